"""A field file carries what decodes it: projectors rebuilt from the ``/projector`` group.

Every round trip is checked against the projector the field was computed with: the same
fingerprint and bitwise the same decoded parameters at grid points.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from losstopo import (
    Grid,
    HessianProjector,
    LossField,
    PlaneProjector,
    Trajectory,
    evaluate,
    random_directions,
    random_state_directions,
)
from losstopo.errors import InvalidParameterError
from losstopo.projectors import AutoEncoderProjector, KernelPCAProjector, PCAProjector
from losstopo.projectors.state import projector_state, restore_projector

torch.manual_seed(0)
MODEL = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
N_PARAMS = sum(p.numel() for p in MODEL.parameters())
DATA = (torch.randn(24, 4), torch.randint(0, 3, (24,)))
X = np.cumsum(np.random.default_rng(0).normal(size=(8, N_PARAMS)), axis=0) * 0.05
COORDS = np.array([[0.3, -0.7], [-0.95, 0.1], [0.0, 0.0]])


def field_of(projector, tmp_path, name="f.h5"):
    evaluate(MODEL, DATA, "cross_entropy", projector, Grid.square(5), progress=False,
             store=tmp_path / name, device="cpu")  # fmt: skip
    return LossField.load(tmp_path / name)


def same_decoder(a, b):
    return a.fingerprint() == b.fingerprint() and np.array_equal(
        a.inverse_transform(COORDS), b.inverse_transform(COORDS)
    )


@pytest.mark.parametrize("kind", ["plane", "states", "pca", "hessian"])
def test_linear_projectors_come_back_exactly(kind, tmp_path):
    if kind == "plane":
        proj = PlaneProjector(MODEL, random_directions(MODEL, 2, seed=1))
    elif kind == "states":
        bn = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
        proj = PlaneProjector(bn, random_state_directions(bn, 2, seed=1))
    elif kind == "pca":
        proj = PCAProjector(n_components=2).fit(X)
    else:
        proj = HessianProjector(MODEL, DATA, n_components=2, device="cpu").fit()
    if kind == "states":
        bn = proj.center
        evaluate(bn, DATA, "cross_entropy", proj, Grid.square(3), progress=False,
                 device="cpu").save(tmp_path / "f.h5")  # fmt: skip
        back = LossField.load(tmp_path / "f.h5").projector
        assert back.buffer_names_ == proj.buffer_names_
    else:
        back = field_of(proj, tmp_path).projector
    assert type(back) is type(proj) and back is not proj
    assert same_decoder(back, proj)
    points = np.random.default_rng(1).normal(size=(3, proj.n_params_))
    assert np.allclose(back.transform(points), proj.transform(points))


@pytest.mark.parametrize("basis", ["span", "dense"])
def test_the_autoencoder_comes_back_exactly(basis, tmp_path):
    ae = AutoEncoderProjector(
        2, hidden=(12, 12), basis=basis, max_epochs=40, random_state=0, progress=False
    ).fit(X)
    back = field_of(ae, tmp_path).projector
    assert same_decoder(back, ae)
    assert np.array_equal(back.transform(X), ae.transform(X))
    assert back.history_["reconstruction"] == ae.history_["reconstruction"]


def test_large_checkpoints_are_referenced_and_asked_for(tmp_path):
    traj = Trajectory(X, np.arange(len(X)), np.zeros(len(X), dtype=str))
    ae = AutoEncoderProjector(2, hidden=(8,), max_epochs=20, random_state=0, progress=False)
    ae.fit(traj)
    state = projector_state(ae, max_bytes=100, source="runs/a/")
    assert "checkpoints" not in state.arrays and not state.meta["checkpoints"]["stored"]
    field = LossField(np.zeros((3, 3)), Grid.square(3), projector_state=state)
    field.save(tmp_path / "f.h5")
    loaded = LossField.load(tmp_path / "f.h5")
    with pytest.raises(InvalidParameterError, match=r"8 fitted checkpoints.*recorded at runs/a/"):
        _ = loaded.projector
    with pytest.raises(InvalidParameterError, match="are not the ones"):
        loaded.restore_projector(checkpoints=X[::-1])
    assert same_decoder(loaded.restore_projector(checkpoints=traj), ae)
    assert loaded.projector is loaded.restore_projector()  # kept once rebuilt


def test_projectors_that_are_not_stored_say_so(tmp_path):
    kpca = KernelPCAProjector(n_components=2).fit(X)
    loaded = field_of(kpca, tmp_path)
    with h5py.File(tmp_path / "f.h5") as f:
        assert f["projector"].attrs["class"].endswith("KernelPCAProjector")
        assert len(f["projector"]) == 0  # no arrays
    with pytest.raises(InvalidParameterError, match="KernelPCAProjector's fitted state is not"):
        _ = loaded.projector


def test_a_field_without_a_projector_says_how_to_give_one():
    with pytest.raises(InvalidParameterError, match="carries no projector.*projector="):
        _ = LossField(np.zeros((2, 2)), Grid.square(2)).projector


def test_a_damaged_projector_group_is_refused(tmp_path):
    loaded = field_of(PCAProjector(n_components=2).fit(X), tmp_path)
    assert loaded.projector is not None
    with h5py.File(tmp_path / "f.h5", "r+") as f:
        f["projector/components_"][0, 0] += 1.0
    with pytest.raises(InvalidParameterError, match="does not reproduce the field's projector"):
        _ = LossField.load(tmp_path / "f.h5").projector
    with h5py.File(tmp_path / "f.h5", "r+") as f:
        f["projector"].attrs["class"] = "os.system"
    with pytest.raises(TypeError, match="not one of losstopo's"):
        _ = LossField.load(tmp_path / "f.h5").projector


def test_a_resumed_store_keeps_its_projector(tmp_path):
    proj = PlaneProjector(MODEL, random_directions(MODEL, 2, seed=2))
    first = field_of(proj, tmp_path)
    again = evaluate(MODEL, DATA, "cross_entropy", proj, Grid.square(5), progress=False,
                     store=tmp_path / "f.h5", device="cpu")  # fmt: skip
    assert again.projector is proj and same_decoder(first.projector, proj)


def test_state_without_a_live_projector_is_rebuilt():
    pca = PCAProjector(n_components=2).fit(X)
    state = projector_state(pca)
    bare = type(state)(state.cls, state.arrays, state.meta)
    assert same_decoder(restore_projector(bare), pca)
