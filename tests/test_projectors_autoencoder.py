"""AutoEncoderProjector (Neuro-Visualizer): layouts, constraints, transform, landscapes."""

import numpy as np
import pytest
import torch

from losstopo import Grid, ParameterSpace, Trajectory, evaluate, train
from losstopo.errors import InvalidParameterError
from losstopo.evaluate import evaluate_points
from losstopo.projectors import AutoEncoderProjector, PCAProjector, layouts


def ae(**kw):
    opts = dict(hidden=(32, 32), max_epochs=300, exact=True, random_state=0, progress=False)
    opts.update(kw)
    return AutoEncoderProjector(**opts)


def walk(n=16, p=40, seed=0):
    rng = np.random.default_rng(seed)
    return (3.0 + np.cumsum(rng.normal(size=(n, p)), axis=0)).astype(np.float32)


def rel_err(proj, X):
    back = proj.inverse_transform(proj.transform(X))
    return np.linalg.norm(back - X, axis=1) / np.linalg.norm(X, axis=1)


@pytest.mark.parametrize("basis", ["span", "dense"])
def test_reconstructs_fitted_checkpoints(basis):
    X = walk()
    proj = ae(basis=basis).fit(X)
    assert proj.basis_ == basis
    assert rel_err(proj, X).max() < 1e-8
    assert np.all(np.abs(proj.codes_) <= 1)


def test_auto_basis_and_span_keeps_a_reference():
    X = walk(10, 200)
    proj = ae(basis="auto").fit(X)
    assert proj.basis_ == "span"
    assert np.shares_memory(proj._basis.points, X)  # no copy of the checkpoints
    assert ae(basis="auto").fit(walk(10, 5)).basis_ == "dense"


def test_history_and_early_stopping():
    proj = ae(max_epochs=2000, patience=20, tol=1e-3).fit(walk())
    assert proj.n_epochs_ < 2000
    assert set(proj.history_) == {"loss", "reconstruction", "anchor", "grid", "origin"}
    assert all(len(v) == proj.n_epochs_ for v in proj.history_.values())


def test_progress_bar_can_be_silenced(capsys):
    ae(max_epochs=20).fit(walk())
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_anchor_presets_and_user_anchors():
    X = walk(20)
    corners = ae(anchors="corners", anchor_weight=10.0).fit(X)
    np.testing.assert_allclose(corners.codes_[0], [-0.8, -0.8], atol=0.05)
    np.testing.assert_allclose(corners.codes_[-1], [0.8, 0.8], atol=0.05)
    user = ae(anchors=[(5, (0.5, -0.5))], anchor_weight=10.0).fit(X)
    np.testing.assert_allclose(user.codes_[5], [0.5, -0.5], atol=0.05)
    diag = ae(anchors="diagonal").fit(X)
    idx, pos = diag.anchors_
    assert len(idx) == 20 and np.allclose(pos[:, 0], pos[:, 1])
    circle = ae(anchors="circle", n_components=3).fit(X)
    assert circle.anchors_[1].shape == (2, 3)
    origin = ae(origin_weight=10.0).fit(X)
    assert np.linalg.norm(origin.codes_[-1]) < 0.1


def test_anchor_errors():
    X = walk(10)
    with pytest.raises(
        InvalidParameterError, match=r"Anchor index 40 is beyond the trajectory of 10 checkpoints"
    ):
        ae(anchors=[(40, (0.0, 0.0))]).fit(X)
    with pytest.raises(InvalidParameterError, match="inside the open latent box"):
        ae(anchors=[(1, (1.5, 0.0))]).fit(X)
    with pytest.raises(InvalidParameterError, match="'anchors' parameter must be one of"):
        ae(anchors="square").fit(X)
    with pytest.raises(InvalidParameterError, match="'hidden' parameter"):
        ae(hidden=()).fit(X)


def test_grid_scaling_term_is_trained():
    proj = ae(grid_weight=0.1).fit(walk())
    assert proj.history_["grid"][0] > 0
    assert rel_err(proj, walk()).max() < 1e-8


def test_transform_refines_to_the_decoded_sheet():
    X = walk(30)
    proj = ae().fit(X[::2])
    held = X[1::2]
    refined = rel_err(proj, held)
    encoder_only = ae(refine_steps=0).fit(X[::2])
    assert np.all(refined <= rel_err(encoder_only, held) + 1e-12)


def test_held_out_beats_pca_on_a_smooth_trajectory():
    t = np.linspace(0, 1, 40)[:, None]
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(4, 50))
    X = (
        10
        + np.sin(3 * t) * dirs[0]
        + np.cos(2 * t) * dirs[1]
        + t**2 * dirs[2]
        + np.sin(5 * t) * 0.3 * dirs[3]
    )
    X = X.astype(np.float32)
    proj, pca = ae(max_epochs=1000).fit(X[::2]), PCAProjector(2).fit(X[::2])
    assert rel_err(proj, X[1::2]).mean() <= 0.5 * rel_err(pca, X[1::2]).mean()


def test_evaluate_end_to_end_2d(tiny_model, tiny_data):
    torch.manual_seed(0)
    before = ParameterSpace.from_module(tiny_model).flatten(tiny_model).clone()
    traj = train(tiny_model, tiny_data, epochs=8, seed=0, progress=False)
    after = ParameterSpace.from_module(tiny_model).flatten(tiny_model).clone()
    assert not torch.equal(before, after)
    proj = ae().fit(traj)
    grid = Grid.around(proj.transform(traj), resolution=4, margin=0.1)
    field = evaluate(
        tiny_model, tiny_data, "cross_entropy", proj, grid, progress=False, trajectory=traj
    )
    assert field.values.shape == (4, 4) and np.all(np.isfinite(field.values))
    assert field.attrs["projector"]["name"] == "AutoEncoderProjector"
    path = field.paths["run0"]
    assert path.coords.shape == (len(traj), 2)
    # the path's losses are the losses at the checkpoints themselves (exact reconstruction)
    at_checkpoints = evaluate_points(tiny_model, tiny_data, "cross_entropy", traj.points).loss
    np.testing.assert_allclose(path.loss, at_checkpoints, rtol=1e-5)
    assert torch.equal(ParameterSpace.from_module(tiny_model).flatten(tiny_model), after)


def test_global_landscape_3d_over_two_runs(tiny_data):
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        runs.append(train(model, tiny_data, epochs=5, seed=seed, run=f"seed{seed}", progress=False))
    traj = Trajectory.concat(runs)
    proj = ae(n_components=3, anchors="circle").fit(traj)
    grid = Grid.around(proj.transform(traj), resolution=3, margin=0.1)
    field = evaluate(model, tiny_data, "cross_entropy", proj, grid, progress=False, trajectory=traj)
    assert field.values.shape == (3, 3, 3)
    assert set(field.paths) == {"seed0", "seed1"}
    assert all(p.coords.shape == (6, 3) for p in field.paths.values())
    assert rel_err(proj, traj.points).max() < 1e-8


@pytest.mark.parametrize("chunk", [1 << 16, 7])  # one block, and many blocks of parameters
def test_span_layout_against_least_squares(chunk, monkeypatch):
    monkeypatch.setattr(layouts, "CHUNK", chunk)
    X = walk(8, 40)
    span = layouts.SpanBasis(X)
    assert span.dim == 7  # 8 checkpoints span a 7-dimensional affine space
    coords, dist2 = span.project(X)
    np.testing.assert_allclose(span.decode(coords), X, rtol=1e-10)
    np.testing.assert_allclose(dist2, 0.0, atol=1e-8)
    # a point off the span: its distance is the least-squares residual
    p = X[:1].astype(np.float64) + np.random.default_rng(3).normal(size=(1, 40))
    mean = X.mean(axis=0, dtype=np.float64)
    basis = (X - mean).T
    sol = np.linalg.lstsq(basis, (p - mean).ravel(), rcond=None)[0]
    foot = mean + basis @ sol
    coords, dist2 = span.project(p)
    np.testing.assert_allclose(span.decode(coords)[0], foot, rtol=1e-9)
    np.testing.assert_allclose(dist2, [np.sum((p[0] - foot) ** 2)], rtol=1e-8)


def test_dense_layout_standardises_each_coordinate():
    X = walk(8, 5).astype(np.float64)
    X[:, 2] = 1.5  # constant: only centred
    dense = layouts.DenseBasis(X)
    np.testing.assert_allclose(dense.coords.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(dense.coords.std(axis=0), [1, 1, 0, 1, 1], atol=1e-12)
    np.testing.assert_allclose(dense.decode(dense.project(X)[0]), X, rtol=1e-12)


def test_by_default_the_sheet_is_the_decoder_alone_and_smoothing_sits_between():
    X = walk()
    default = AutoEncoderProjector(hidden=(32, 32), max_epochs=300, random_state=0, progress=False)
    errors = {
        name: rel_err(proj.fit(X), X).mean()
        for name, proj in {
            "exact": ae(),
            "smooth": ae(smoothing=1e-2),
            "default": default,
        }.items()
    }
    assert not default.exact
    assert errors["exact"] < 1e-8 < errors["smooth"] < errors["default"]
    # the same training: the decoders agree, only the residual differs
    z = np.array([[0.1, -0.2]])
    exact = ae().fit(X)
    no_residual = exact.decoder_(torch.as_tensor(z)).numpy()
    assert np.allclose(default.decoder_(torch.as_tensor(z)).numpy(), no_residual)
    with pytest.raises(InvalidParameterError, match="smoothing"):
        ae(smoothing=-1.0).fit(X)
