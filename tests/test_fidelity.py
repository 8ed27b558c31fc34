"""Fidelity reports, the comparison table, the PINN task and the acceptance figures (small scale)."""

import copy
import csv

import numpy as np
import pytest
import torch
from torch.func import functional_call

from losstopo import ParameterSpace, Trajectory, evaluate_points, train
from losstopo.datasets import digits
from losstopo.errors import InvalidParameterError
from losstopo.fidelity import (
    compare_projectors,
    default_projectors,
    embed_with_loss,
    fidelity,
)
from losstopo.models import MLP, SmallCNN
from losstopo.pinn import poisson_data, poisson_residual, train_pinn
from losstopo.projectors import AutoEncoderProjector, PCAProjector, PHATEProjector


@pytest.fixture(scope="module")
def small_digits():
    x, y = digits("train")
    return x[:200], y[:200]


@pytest.fixture(scope="module")
def mlp_traj(small_digits):
    torch.manual_seed(0)
    model = MLP(64, (8,), 10)
    traj = train(model, small_digits, epochs=12, lr=0.1, seed=0, progress=False)
    return traj, model


def loop_losses(model, data, rows):
    """Independent reference: one functional_call per row, torch's mean cross-entropy."""
    space = ParameterSpace.from_module(model)
    x, y = data
    out = []
    for row in np.asarray(rows):
        vec = torch.as_tensor(row, dtype=torch.float32)
        params = space.unflatten(vec)
        with torch.no_grad():
            out.append(
                float(torch.nn.functional.cross_entropy(functional_call(model, params, (x,)), y))
            )
    return np.array(out)


def test_evaluate_points_match_the_model_and_leave_it_alone(mlp_traj, small_digits):
    traj, model = mlp_traj
    before = ParameterSpace.from_module(model).flatten(model).clone()
    values = evaluate_points(
        model, small_digits, "cross_entropy", traj.points[[0, -1]], metrics=["accuracy"]
    )
    with torch.no_grad():
        out = model(small_digits[0])
    direct = torch.nn.functional.cross_entropy(out, small_digits[1])
    np.testing.assert_allclose(values.loss[-1], float(direct), rtol=1e-5)
    np.testing.assert_allclose(
        values.loss, loop_losses(model, small_digits, traj.points[[0, -1]]), rtol=1e-5
    )
    acc = float((out.argmax(1) == small_digits[1]).double().mean())
    assert values.metrics["accuracy"][-1] == pytest.approx(acc)
    assert values.loss[0] > values.loss[-1]
    assert torch.equal(ParameterSpace.from_module(model).flatten(model), before)


def _independent_errors(proj, points):
    rec = proj.inverse_transform(proj.transform(points))
    err = np.linalg.norm(rec - points, axis=1) / np.linalg.norm(points, axis=1)
    return err, rec.astype(np.float32)


def test_report_values_and_holdout(mlp_traj, small_digits):
    traj, model = mlp_traj
    data = small_digits
    rep = fidelity(model, data, "cross_entropy", PCAProjector(2), traj, holdout=True)
    n = len(traj)
    points = traj.points.astype(np.float64)
    # against an independent PCA fit, reconstruction and per-row loss loop
    err, rec = _independent_errors(PCAProjector(2).fit(traj), points)
    np.testing.assert_allclose(rep.projection_error, err, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(rep.loss, loop_losses(model, data, points), rtol=1e-5)
    np.testing.assert_allclose(rep.reconstructed_loss, loop_losses(model, data, rec), rtol=1e-5)
    np.testing.assert_allclose(rep.loss_error, np.abs(rep.reconstructed_loss - rep.loss))
    np.testing.assert_allclose(rep.relative_loss_error, rep.loss_error / rep.loss)
    assert rep.projector == "PCAProjector"
    assert rep.mean_projection_error == pytest.approx(rep.projection_error.mean())
    assert rep.mean_loss_error == pytest.approx(rep.loss_error.mean())
    assert rep.mean_relative_loss_error == pytest.approx(rep.relative_loss_error.mean())
    # held out: a PCA fitted on the even checkpoints, measured on the odd ones
    assert rep.holdout is not None
    np.testing.assert_array_equal(rep.holdout.indices, np.arange(1, n, 2))
    assert rep.holdout.attrs["n_fitted"] == len(range(0, n, 2))
    held_err, _ = _independent_errors(PCAProjector(2).fit(traj.points[::2]), points[1::2])
    np.testing.assert_allclose(rep.holdout.projection_error, held_err, rtol=1e-6, atol=1e-12)
    summary = rep.summary()
    assert summary["holdout_mean_projection_error"] == rep.holdout.mean_projection_error
    # explicit indices / masks; no holdout by default
    assert fidelity(model, data, "cross_entropy", PCAProjector(2), traj).holdout is None
    r2 = fidelity(model, data, "cross_entropy", PCAProjector(2), traj, holdout=[2, 5])
    np.testing.assert_array_equal(r2.holdout.indices, [2, 5])


def test_fidelity_never_modifies_the_projector(mlp_traj, small_digits):
    traj, model = mlp_traj
    unfitted = PCAProjector(2, center="mean")
    params = unfitted.get_params()
    fidelity(model, small_digits, "cross_entropy", unfitted, traj, holdout=True)
    assert not [k for k in vars(unfitted) if k.endswith("_")]  # still unfitted
    assert unfitted.get_params() == params
    # a fitted projector is used as it is (not refitted), and left as it was
    fitted = PCAProjector(2).fit(traj[: len(traj) // 2])
    arrays = {k: np.copy(v) for k, v in vars(fitted).items() if isinstance(v, np.ndarray)}
    rep = fidelity(model, small_digits, "cross_entropy", fitted, traj, holdout=True)
    err, _ = _independent_errors(fitted, traj.points.astype(np.float64))
    np.testing.assert_allclose(rep.projection_error, err, rtol=1e-6, atol=1e-12)
    for k, v in arrays.items():
        np.testing.assert_array_equal(getattr(fitted, k), v, err_msg=k)


def test_fidelity_uses_the_default_device(mlp_traj, small_digits, monkeypatch):
    traj, model = mlp_traj
    calls = []

    def spy():
        calls.append(1)
        return torch.device("cpu")

    monkeypatch.setattr("losstopo.engine.device.default_device", spy)
    fidelity(model, small_digits, "cross_entropy", PCAProjector(2).fit(traj), traj)
    assert calls


def test_holdout_errors(mlp_traj, small_digits):
    traj, model = mlp_traj
    data = small_digits
    with pytest.raises(InvalidParameterError, match="Holdout index 99 is beyond the trajectory"):
        fidelity(model, data, "cross_entropy", PCAProjector(2), traj, holdout=[99])
    with pytest.raises(InvalidParameterError, match="both must be non-empty"):
        fidelity(
            model, data, "cross_entropy", PCAProjector(2), traj, holdout=np.ones(len(traj), bool)
        )
    with pytest.raises(InvalidParameterError, match="'holdout' parameter"):
        fidelity(model, data, "cross_entropy", PCAProjector(2), traj, holdout="half")


def test_phate_fidelity_names_decoders(mlp_traj, small_digits):
    traj, model = mlp_traj
    with pytest.raises(InvalidParameterError, match="cannot decode.*PCAProjector"):
        fidelity(model, small_digits, "cross_entropy", PHATEProjector(random_state=0), traj)


def test_embed_with_loss_matches_evaluate_points(small_digits):
    parts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MLP(64, (8,), 10)
        parts.append(
            train(model, small_digits, epochs=3, seed=seed, run=f"s{seed}", progress=False)
        )
    traj = Trajectory.concat(parts)
    pca = PCAProjector(2).fit(traj)
    snapshot = copy.deepcopy(vars(pca))
    paths = embed_with_loss(model, small_digits, "cross_entropy", pca, traj)
    assert list(paths) == ["s0", "s1"]
    coords = pca.transform(traj)
    losses = loop_losses(model, small_digits, traj.points)
    for run, path in paths.items():
        rows = np.flatnonzero(traj.runs == run)
        np.testing.assert_allclose(path.coords, coords[rows])
        np.testing.assert_allclose(path.loss, losses[rows], rtol=1e-5)
        np.testing.assert_array_equal(path.step, traj.steps[rows])
        assert path.run == run
    np.testing.assert_allclose(
        paths["s1"].loss, evaluate_points(model, small_digits, "cross_entropy", parts[1]).loss
    )
    assert vars(pca).keys() == snapshot.keys()
    with pytest.raises(InvalidParameterError, match="needs a losstopo.Trajectory"):
        embed_with_loss(model, small_digits, "cross_entropy", pca, traj.points)


def test_default_projectors_come_from_the_registry():
    projs = default_projectors(3, random_state=5)
    assert list(projs) == ["pca", "kpca", "umap", "autoencoder"]
    assert {name: p.n_components for name, p in projs.items()} == dict.fromkeys(projs, 3)
    assert [projs[k].random_state for k in ("kpca", "umap", "autoencoder")] == [5, 5, 5]
    assert projs["autoencoder"].progress is False
    assert not any(k.endswith("_") for p in projs.values() for k in vars(p))  # unfitted


def test_compare_projectors_checks_the_outputs_first(mlp_traj, small_digits, tmp_path):
    traj, model = mlp_traj
    never = PCAProjector(2)
    with pytest.raises(InvalidParameterError, match="does not exist"):
        compare_projectors(
            model,
            small_digits,
            "cross_entropy",
            traj,
            projectors={"pca": never},
            csv_path=tmp_path / "no" / "f.csv",
        )
    assert not [k for k in vars(never) if k.endswith("_")]


def test_compare_projectors_writes_csv_and_chart(mlp_traj, small_digits, tmp_path):
    traj, model = mlp_traj
    ae = AutoEncoderProjector(
        hidden=(32, 32), max_epochs=400, exact=True, random_state=0, progress=False
    )
    pca = PCAProjector(2)
    table = compare_projectors(
        model,
        small_digits,
        "cross_entropy",
        traj,
        projectors={"pca": pca, "autoencoder": ae},
        csv_path=tmp_path / "f.csv",
    )
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert [r["projector"] for r in rows] == ["pca", "autoencoder"]
    assert "holdout_mean_projection_error" in rows[0]
    errors = table.error_table()
    assert set(errors["pca"]) == {
        "mean_projection_error",
        "mean_relative_loss_error",
        "holdout_mean_projection_error",
        "holdout_mean_relative_loss_error",
    }
    assert errors["pca"]["mean_projection_error"] == table.as_dict()["pca"]["mean_projection_error"]
    d = table.as_dict()
    ref = fidelity(model, small_digits, "cross_entropy", PCAProjector(2), traj, holdout=True)
    assert d["pca"]["mean_projection_error"] == pytest.approx(ref.mean_projection_error)
    assert float(rows[0]["mean_projection_error"]) == pytest.approx(
        ref.mean_projection_error, rel=1e-5
    )
    assert d["autoencoder"]["mean_projection_error"] < 1e-3 * d["pca"]["mean_projection_error"]
    assert "autoencoder" in str(table)
    # the projectors given are left unfitted
    assert not [k for p in (pca, ae) for k in vars(p) if k.endswith("_")]


def test_pinn_task():
    traj, model = train_pinn(hidden=(8, 8), steps=60, record_every=20, seed=0, progress=False)
    assert traj.points.shape == (4, ParameterSpace.from_module(model).n_params)
    assert traj.metrics["loss"][-1] < traj.metrics["loss"][1]
    x, u = poisson_data(32)
    assert poisson_residual(model, x).shape == (32, 1)
    again, _ = train_pinn(hidden=(8, 8), steps=60, record_every=20, seed=0, progress=False)
    np.testing.assert_array_equal(again.points, traj.points)


def _acceptance(traj, model, data, loss):
    projs = default_projectors(2, random_state=0)
    projs["umap"].n_neighbors = 8
    projs["autoencoder"].max_epochs = 1500
    projs["autoencoder"].exact = True  # the acceptance of exact reconstruction (not the default)
    reps = {
        name: fidelity(
            model, data, loss, p, traj, holdout=True if name in ("pca", "autoencoder") else None
        )
        for name, p in projs.items()
    }
    ae = reps.pop("autoencoder")
    best_proj = min(r.mean_projection_error for r in reps.values())
    best_loss = min(r.mean_relative_loss_error for r in reps.values())
    assert ae.mean_projection_error * 100 <= best_proj
    assert ae.mean_relative_loss_error * 10 <= best_loss
    assert ae.holdout.mean_projection_error <= 0.5 * reps["pca"].holdout.mean_projection_error


@pytest.mark.slow
def test_acceptance_two_digits_models_and_a_pinn():
    data = digits("train")
    x_img = data[0].view(-1, 1, 8, 8)
    torch.manual_seed(0)
    mlp = MLP(64, (16,), 10)
    _acceptance(
        train(mlp, data, epochs=30, lr=0.05, seed=0, progress=False), mlp, data, "cross_entropy"
    )
    torch.manual_seed(0)
    cnn = SmallCNN(1, 10, width=4)
    cnn_traj = train(cnn, (x_img, data[1]), epochs=30, lr=0.05, seed=0, progress=False)
    _acceptance(cnn_traj, cnn, (x_img, data[1]), "cross_entropy")
    pinn_traj, pinn = train_pinn(
        hidden=(16, 16), steps=600, record_every=20, seed=0, progress=False
    )
    _acceptance(pinn_traj, pinn, poisson_data(64), "mse")


def test_global_trajectory_fidelity(small_digits):
    parts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MLP(64, (8,), 10)
        parts.append(
            train(model, small_digits, epochs=8, seed=seed, run=f"s{seed}", progress=False)
        )
    traj = Trajectory.concat(parts)
    rep = fidelity(
        model,
        small_digits,
        "cross_entropy",
        AutoEncoderProjector(
            hidden=(32, 32), max_epochs=300, exact=True, random_state=0, progress=False
        ),
        traj,
        holdout=True,
    )
    # every other checkpoint of each run is held out
    assert len(rep.holdout.indices) == 8 and rep.mean_projection_error < 1e-8
