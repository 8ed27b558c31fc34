"""Curvature maps: values against direct Lanczos, and a SIGKILLed run resumes to the same field."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from losstopo import (
    CriticalCheck,
    Grid,
    LossField,
    PlaneProjector,
    analyze,
    check_critical_points,
    evaluate,
    hessian_map,
    hvp,
)
from losstopo.export import write_paraview
from losstopo.hessian import lanczos

SETUP = """
import torch
from losstopo import PlaneProjector, random_directions
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3))
g = torch.Generator().manual_seed(1)
data = (torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g))
proj = PlaneProjector(model, random_directions(model, n_components=2, seed=0))
"""


def setup():
    ns: dict = {}
    exec(SETUP, ns)
    return ns["model"], ns["data"], ns["proj"]


def test_map_values_are_lanczos_extremes_at_decoded_points():
    model, data, proj = setup()
    grid = Grid.square(resolution=3, extent=0.5)
    cmap = hessian_map(model, data, "cross_entropy", proj, grid, k=6, seed=4, progress=False)
    flat = 7  # one off-centre point, by hand
    point = proj.inverse_transform(grid.points()[flat][None])[0]
    op = hvp(model, data, "cross_entropy", point=point)
    ritz = lanczos(op.matvec, op.shape[0], 6, seed=4 + flat).ritz_values()
    assert cmap.metrics["lambda_max"].ravel()[flat] == pytest.approx(ritz[-1], rel=1e-6)
    assert cmap.metrics["lambda_min"].ravel()[flat] == pytest.approx(ritz[0], rel=1e-6)
    assert cmap.values.ravel()[flat] == pytest.approx(abs(ritz[0] / ritz[-1]), rel=1e-6)


def test_sigkilled_map_resumes_to_the_identical_field(tmp_path):
    store = tmp_path / "map.h5"
    child = SETUP + textwrap.dedent(
        f"""
        import os, signal
        from losstopo import Grid, hessian_map
        from losstopo.store import PointStore
        flushes = []
        original = PointStore.flush
        def flush_then_die(self, attrs):
            original(self, attrs)
            flushes.append(1)
            if len(flushes) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        PointStore.flush = flush_then_die
        hessian_map(model, data, "cross_entropy", proj, Grid.square(resolution=5), k=5,
                    store={str(store)!r}, chunk_size=4, progress=False)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -9, proc.stderr
    from losstopo.io import read_progress

    done, total, complete = read_progress(store)
    assert 0 < done < total and not complete
    model, data, proj = setup()
    grid = Grid.square(resolution=5)
    resumed = hessian_map(
        model, data, "cross_entropy", proj, grid, k=5, store=store, chunk_size=4, progress=False
    )
    fresh = hessian_map(model, data, "cross_entropy", proj, grid, k=5, progress=False)
    assert resumed.equals(fresh)  # bitwise: values and both eigenvalue arrays
    assert LossField.load(store).equals(fresh)


def test_map_refuses_a_store_of_other_settings(tmp_path):
    model, data, proj = setup()
    store = tmp_path / "map.h5"
    grid = Grid.square(resolution=3)
    hessian_map(model, data, "cross_entropy", proj, grid, k=3, store=store, progress=False)
    from losstopo.errors import StoreMismatchError

    with pytest.raises(StoreMismatchError, match="lanczos"):
        hessian_map(model, data, "cross_entropy", proj, grid, k=4, store=store, progress=False)


def test_check_is_stored_with_the_topology_and_exported(tmp_path):
    model, data, proj = setup()
    field = evaluate(model, data, "cross_entropy", proj, Grid.square(resolution=7), progress=False)
    topo = analyze(field)
    check = check_critical_points(
        model, data, "cross_entropy", field, topo, projector=proj, steps=4
    )
    assert len(check) == len(topo.persistent)
    field = field.with_topology(check.attach(topo))
    field.save(tmp_path / "f.h5")
    back = CriticalCheck.from_summary(LossField.load(tmp_path / "f.h5").topology)
    assert back is not None
    np.testing.assert_array_equal(back.lambda_min, check.lambda_min)
    np.testing.assert_array_equal(back.plane_hessian, check.plane_hessian)
    np.testing.assert_array_equal(back.is_full_space_minimum, check.is_full_space_minimum)
    pv = pytest.importorskip("pyvista")
    (tmp_path / "pv").mkdir()
    write_paraview(field, tmp_path / "pv", topology=field.topology)
    crit = [p for p in (tmp_path / "pv").rglob("*critical*.vtp")]
    assert crit, sorted(p.name for p in (tmp_path / "pv").rglob("*"))
    mesh = pv.read(crit[0])
    assert "FullSpaceLambdaMin" in mesh.point_data and "FullSpaceMinimum" in mesh.point_data
    minima = np.asarray(mesh.point_data["CriticalType"]) == 0
    assert set(np.asarray(mesh.point_data["FullSpaceMinimum"])[minima]) <= {0, 1}


def test_a_picture_minimum_can_be_a_full_space_saddle():
    """An analytic loss: min of the plane (x, y) at 0, but negative curvature along z."""

    class Saddle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(3))

        def forward(self, x):
            x0, y0, z0 = self.w
            value = x0**2 + y0**2 - 0.5 * z0**2  # minimum in the (x, y) plane, saddle in 3D
            return value.expand(len(x), 1)

    def loss(out, target):
        return out.mean()

    model = Saddle()
    data = (torch.zeros(4, 1), torch.zeros(4, 1))
    proj = PlaneProjector(model, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    field = evaluate(model, data, loss, proj, Grid.square(resolution=9), progress=False)
    check = check_critical_points(model, data, loss, field, projector=proj, steps=3)
    minimum = int(np.flatnonzero(check.type == 0)[0])
    np.testing.assert_allclose(check.plane_hessian[minimum], 2 * np.eye(2), atol=1e-6)
    np.testing.assert_allclose(check.fitted_hessian[minimum], 2 * np.eye(2), atol=1e-6)
    assert check.lambda_min[minimum] == pytest.approx(-1.0)
    assert check.lambda_max[minimum] == pytest.approx(2.0)
    assert not check.is_full_space_minimum[minimum]
    assert check.n_saddles_in_full_space == 1


def test_decoder_jacobian_of_a_curved_decoder():
    from losstopo.hessian import decoder_jacobian

    def decoder(z):
        z = np.asarray(z, dtype=np.float64)
        return np.stack([z[:, 0] ** 2, z[:, 0] * z[:, 1], np.sin(z[:, 1])], axis=1)

    z = np.array([0.3, -0.7])
    jac, how = decoder_jacobian(decoder, z, np.array([1e-4, 1e-4]))
    want = np.array([[2 * z[0], 0.0], [z[1], z[0]], [0.0, np.cos(z[1])]])
    assert how == "central differences"
    np.testing.assert_allclose(jac, want, atol=1e-7)
