"""verify_topology on analytic losses of three parameters, where the full space is known exactly.

The loss ``f(x, y, z) = (x^2 - 1)^2 + y^2 - x z^2 / 2 + z^4`` has, on the plane ``z = 0``, two
wells at ``x = -1`` and ``x = +1`` separated by a barrier of 1 at the origin. In the full space
``(-1, 0, 0)`` is a minimum (Hessian ``diag(8, 2, 1)``) and ``(+1, 0, 0)`` a saddle (Hessian
``diag(8, 2, -1)``). A sheet that bends out of any plane, ``(u, v) -> (v - 1, u, 2 (1 - u^2))``,
shows two wells in ``u`` that the loss does not have between the two decoded points.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from losstopo import (
    Grid,
    LossField,
    PHATEProjector,
    PlaneProjector,
    TopologyCheck,
    analyze,
    evaluate,
    verify_topology,
)
from losstopo.errors import InvalidParameterError, InvalidTypeError
from losstopo.verify import format_check


def f_numpy(p: np.ndarray) -> np.ndarray:
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return (x**2 - 1) ** 2 + y**2 - 0.5 * x * z**2 + z**4


class Analytic(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x, y, z = self.w
        value = (x**2 - 1) ** 2 + y**2 - 0.5 * x * z**2 + z**4
        return value.expand(len(inputs), 1)


def mean(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return out.mean()


DATA = (torch.zeros(2, 1), torch.zeros(2, 1))


class BentSheet:
    """A decoder of the user's own whose sheet bends out of every plane."""

    decodes = True
    n_components_ = 2
    n_params_ = 3

    def inverse_transform(self, coords: np.ndarray) -> np.ndarray:
        c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        u, v = c[:, 0], c[:, 1]
        return np.stack([v - 1.0, u, 2.0 * (1.0 - u**2)], axis=1)

    def transform(self, X: np.ndarray) -> np.ndarray:
        p = np.asarray(getattr(X, "points", X), dtype=np.float64).reshape(-1, 3)
        return np.stack([p[:, 1], p[:, 0] + 1.0], axis=1)

    def fingerprint(self) -> str:
        return "bent-sheet"

    def describe(self) -> dict:
        return {"name": "BentSheet"}


@pytest.fixture(scope="module")
def plane_case():
    model = Analytic()
    proj = PlaneProjector(model, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    field = evaluate(
        model, DATA, mean, proj, Grid.square(resolution=31, extent=1.5), progress=False
    )
    topo = analyze(field, min_persistence=0.1)
    return model, proj, field, topo


@pytest.fixture(scope="module")
def plane_check(plane_case):
    model, proj, field, topo = plane_case
    ckpts = np.array([[-0.9, 0.0, 0.0], [1.0, 0.3, 0.0]])
    check = verify_topology(
        model, DATA, mean, field, topo, projector=proj, trajectory=ckpts, steps=3, device="cpu"
    )
    return check, ckpts


def test_a_plane_minimum_that_is_a_full_space_saddle_is_labelled_a_saddle(plane_check):
    check, _ = plane_check
    assert check.n_minima == 2 and check.n_separations == 1
    plus = int(np.argmax(check.coords[:, 0]))
    minus = 1 - plus
    np.testing.assert_allclose(check.coords[plus], [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(check.coords[minus], [-1.0, 0.0], atol=1e-9)
    # the exact Hessians: diag(8, 2, -1) at (1, 0, 0), diag(8, 2, 1) at (-1, 0, 0)
    assert check.lambda_min[plus] == pytest.approx(-1.0, abs=1e-6)
    assert check.lambda_max[plus] == pytest.approx(8.0, abs=1e-6)
    assert check.lambda_min[minus] == pytest.approx(1.0, abs=1e-6)
    assert not check.is_full_space_minimum[plus] and check.is_full_space_minimum[minus]
    assert check.status.tolist() == ["confirmed"]  # the plane holds the straight segment
    assert check.n_artifact_minima == 0 and check.n_saddles_in_full_space == 1
    np.testing.assert_allclose(check.loss, f_numpy(np.c_[check.coords, np.zeros(2)]), atol=1e-6)


def test_a_plane_separation_is_confirmed_by_the_straight_segment(plane_check):
    check, _ = plane_check
    # the segment from (-1, 0, 0) to (1, 0, 0) climbs to f(0) = 1 from f(+-1) = 0
    assert check.picture_barrier[0] == pytest.approx(1.0, abs=1e-9)
    assert check.straight_barrier[0] == pytest.approx(1.0, abs=1e-6)
    # a plane cannot invent a barrier: the straight one is at least the picture's
    assert check.straight_barrier[0] >= check.picture_barrier[0] - 1e-9
    a, b = check.pair[0]
    t = np.linspace(0, 1, check.path_loss.shape[1])[:, None]
    ends = np.c_[check.coords[[a, b]], np.zeros(2)]
    np.testing.assert_allclose(
        check.path_loss[0], f_numpy((1 - t) * ends[0] + t * ends[1]), atol=1e-6
    )
    assert check.status.tolist() == ["confirmed"] and check.score == 1.0


def test_distance_to_the_nearest_checkpoint(plane_check):
    check, ckpts = plane_check
    decoded = np.c_[check.coords, np.zeros(2)]
    expected = [min(np.linalg.norm(decoded[i] - c) for c in ckpts) for i in range(2)]
    np.testing.assert_allclose(check.checkpoint_distance, expected, atol=1e-9)
    np.testing.assert_allclose(check.param_norm, np.linalg.norm(decoded, axis=1), atol=1e-9)


def test_a_bent_sheet_barrier_that_the_full_space_does_not_have_is_an_artifact():
    model, sheet = Analytic(), BentSheet()
    grid = Grid({"u": np.linspace(-1.2, 1.2, 25), "v": np.linspace(-0.5, 0.5, 11)})
    field = evaluate(model, DATA, mean, sheet, grid, progress=False)
    topo = analyze(field, min_persistence=0.1)
    check = verify_topology(model, DATA, mean, field, topo, projector=sheet, steps=3, device="cpu")
    assert check.n_minima == 2 and check.n_separations == 1
    # on the sheet (v = 0): u^2 + z^2 / 2 + z^4 with z = 2 (1 - u^2): two wells, 18 at u = 0
    np.testing.assert_allclose(check.coords, [[0.9, 0.0], [-0.9, 0.0]], atol=1e-9)
    # every path from u < 0 to u > 0 crosses the column u = 0: its lowest vertex is the saddle
    U, V = np.meshgrid(*grid.axes.values(), indexing="ij")
    on_sheet = f_numpy(sheet.inverse_transform(np.c_[U.ravel(), V.ravel()])).reshape(U.shape)
    assert check.picture_barrier[0] == pytest.approx(on_sheet[12].min() - on_sheet.min())
    assert check.picture_barrier[0] > 15
    # between the decoded minima (-1, +-u, z) the loss is y^2 + const: no barrier at all
    a, b = sheet.inverse_transform(check.coords[check.pair[0]])
    t = np.linspace(0, 1, 1001)[:, None]
    on_segment = f_numpy((1 - t) * a + t * b)
    reference = on_segment.max() - max(on_segment[0], on_segment[-1])
    assert check.straight_barrier[0] == pytest.approx(reference, abs=1e-6)
    assert reference == pytest.approx(0.0, abs=1e-6)
    assert check.status.tolist() == ["artifact"] and check.score == 0.0
    # both decoded minima have positive curvature: the artifact comes from the separation
    assert check.is_full_space_minimum.all()
    assert check.is_artifact[check.pair[0, 0]] and not check.is_artifact[check.pair[0, 1]]
    assert check.n_artifact_minima == 1


def test_a_curve_that_removes_the_straight_barrier_is_curve_connected(plane_case):
    model, proj, field, topo = plane_case
    seen = []

    def curve_fn(a: np.ndarray, b: np.ndarray) -> float:
        seen.append((a.copy(), b.copy()))
        return 0.05  # a curve around the barrier: almost no excess loss

    check = verify_topology(
        model, DATA, mean, field, topo, projector=proj, curve=True, curve_fn=curve_fn, steps=3
    )
    assert check.status.tolist() == ["curve-connected"] and check.curve_barrier.tolist() == [0.05]
    assert len(seen) == 1 and seen[0][0].shape == (3,)
    plus = int(np.argmax(check.coords[:, 0]))  # the full-space saddle
    assert check.score == 0.0 and check.is_artifact[check.pair[0, 0]]
    assert check.n_artifact_minima == 1 and check.n_saddles_in_full_space == 1
    assert not check.is_full_space_minimum[plus]
    high = verify_topology(
        model, DATA, mean, field, topo, projector=proj, curve=True, curve_fn=lambda a, b: 0.9,
        steps=3,
    )  # fmt: skip
    assert high.status.tolist() == ["confirmed"]


def test_a_straight_barrier_lower_than_the_fraction_asks_is_overstated_not_an_artifact(
    plane_case,
):
    model, proj, field, topo = plane_case
    check = verify_topology(model, DATA, mean, field, topo, projector=proj, fraction=2.0, steps=3)
    # the straight segment climbs the same barrier as the picture (about 1, above the threshold
    # 0.1), short of twice the picture's: two basins, their barrier not as high as asked
    assert check.status.tolist() == ["overstated"] and check.score == 0.0
    assert check.straight_barrier[0] > topo.min_persistence and check.n_artifact_minima == 0


def test_curve_checks_train_a_bezier_curve_by_default(plane_case):
    """Every path between the wells crosses x = 0, where the loss is at least 1: no curve helps."""
    model, proj, field, topo = plane_case
    check = verify_topology(model, DATA, mean, field, topo, projector=proj, curve=True, steps=3)
    assert check.status.tolist() == ["confirmed"]
    assert check.curve_barrier[0] >= 0.99


def test_a_projector_that_cannot_decode_is_refused_naming_those_that_can(plane_case):
    model, _, field, topo = plane_case
    with pytest.raises(InvalidTypeError, match="PHATEProjector only embeds.*auto-encoder"):
        verify_topology(model, DATA, mean, field, topo, projector=PHATEProjector())
    bare = dataclasses.replace(field, projector_state=None)  # e.g. a field built by hand
    with pytest.raises(InvalidParameterError, match="carries none; pass projector=.*auto-encoder"):
        verify_topology(model, DATA, mean, bare, topo)


def test_a_loaded_field_decodes_with_the_projector_its_file_carries(plane_case, tmp_path):
    model, proj, field, topo = plane_case
    field.save(tmp_path / "f.h5")
    loaded = LossField.load(tmp_path / "f.h5")
    assert loaded.projector is not proj and loaded.projector.fingerprint() == proj.fingerprint()
    given = verify_topology(model, DATA, mean, field, topo, projector=proj, device="cpu")
    stored = verify_topology(model, DATA, mean, loaded, topo, device="cpu")
    assert np.array_equal(stored.straight_barrier, given.straight_barrier)
    assert stored.status.tolist() == given.status.tolist()


def test_a_model_of_another_size_is_refused(plane_case):
    _, proj, field, topo = plane_case
    other = torch.nn.Linear(1, 1)  # 2 parameters, the field's projector maps to 3
    with pytest.raises(InvalidParameterError, match="maps to 3 parameters but the model has 2"):
        verify_topology(other, DATA, mean, field, topo, projector=proj)


def test_a_field_with_only_the_global_minimum_gives_an_empty_valid_check():
    model = Analytic()
    proj = PlaneProjector(model, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    proj = PlaneProjector(torch.tensor([-1.0, 0.0, 0.0]), proj.components_)  # the x = -1 well
    field = evaluate(
        model, DATA, mean, proj, Grid.square(resolution=11, extent=0.5), progress=False
    )
    check = verify_topology(model, DATA, mean, field, projector=proj, steps=3)
    assert check.n_minima == 1 and check.n_separations == 0
    assert np.isnan(check.score) and check.n_artifact_minima == 0
    assert check.path_loss.shape == (0, 21) and check.status.shape == (0,)
    assert TopologyCheck.from_dict(json.loads(json.dumps(check.to_dict()))).equals(check)
    assert "0 separations" in format_check(check)


def test_the_check_round_trips_through_json_and_the_field_file(plane_check, plane_case, tmp_path):
    check, _ = plane_check
    _, _, field, topo = plane_case
    text = json.dumps(check.to_dict(), allow_nan=False)
    again = TopologyCheck.from_dict(json.loads(text))
    assert again.equals(check) and again.status.dtype == check.status.dtype
    assert np.isnan(again.curve_barrier).all()
    attached = check.attach(topo)
    assert TopologyCheck.from_summary(topo) is None
    field.with_topology(attached).save(tmp_path / "f.h5")
    loaded = LossField.load(tmp_path / "f.h5")
    assert TopologyCheck.from_summary(loaded.topology).equals(check)
    table = format_check(check)
    assert "confirmed" in table and "score 1" in table


def test_the_check_is_shown_in_the_report_and_the_vtk_export(plane_check, plane_case, tmp_path):
    from losstopo.report import write_report

    check, _ = plane_check
    _, _, field, topo = plane_case
    field = field.with_topology(check.attach(topo))
    (tmp_path / "run").mkdir()
    field.save(tmp_path / "run" / "f.h5")
    html = write_report(tmp_path / "run").read_text()
    assert "Basins and separations in the full parameter space" in html
    assert "confirmed" in html and "Score 1" in html
    pv = pytest.importorskip("pyvista")
    from losstopo.export import write_paraview

    (tmp_path / "pv").mkdir()
    write_paraview(field, tmp_path / "pv", topology=field.topology)
    mesh = pv.read(next((tmp_path / "pv").rglob("*critical*.vtp")))
    types = np.asarray(mesh.point_data["CriticalType"])
    artifact = np.asarray(mesh.point_data["BasinArtifact"])
    status = np.asarray(mesh.point_data["SeparationStatus"])
    assert sorted(artifact[types == 0].tolist()) == [0, 0]  # both basins confirmed
    assert status[types == 1].tolist() == [0]  # the one merge saddle, confirmed


def test_two_runs_separated_by_a_real_barrier_lose_it_after_alignment():
    """Two digits MLPs from different seeds in one plane (with a third model): the picture's
    separation of their basins is confirmed by the straight path in the full space; after the
    second is aligned to the first by weight matching the barrier is gone from the picture."""
    from losstopo.alignment import apply_permutation, weight_matching
    from losstopo.datasets import digits
    from losstopo.models import MLP
    from losstopo.space import ParameterSpace
    from losstopo.trajectory import train

    data = digits("train", images=False)

    def trained(seed):
        torch.manual_seed(seed)
        net = MLP(64, (32,), 10)
        train(net, data, epochs=6, lr=0.1, seed=seed, progress=False)
        return net

    a, b = trained(0), trained(1)
    torch.manual_seed(2)
    third = MLP(64, (32,), 10)
    space = ParameterSpace.from_module(a)
    grid = Grid({"x": np.linspace(-0.25, 1.25, 25), "y": np.linspace(-0.3, 0.6, 13)})

    def check(other):
        A, B, C = (space.flatten(m).detach().double().numpy() for m in (a, other, third))
        proj = PlaneProjector(A, np.stack([B - A, C - A]))  # A at (0, 0), B at (1, 0)
        field = evaluate(a, data, "cross_entropy", proj, grid, progress=False, metrics=())
        topo = analyze(field, min_persistence=0.05)
        return verify_topology(a, data, "cross_entropy", field, topo, steps=6, n_points=11)

    naive = check(b)
    assert naive.n_separations == 1 and naive.status.tolist() == ["confirmed"]
    assert naive.picture_barrier[0] > 0.1 and naive.straight_barrier[0] >= naive.picture_barrier[0]
    (end_a, end_b) = naive.coords[naive.pair[0]][:, 0]  # the two basins hold A's and B's ends
    assert sorted([end_a, end_b])[0] < 0.5 < sorted([end_a, end_b])[1]
    aligned = check(apply_permutation(b, weight_matching(a, b)))
    barrier = aligned.picture_barrier.max() if aligned.n_separations else 0.0
    assert barrier < 0.25 * naive.picture_barrier[0]
