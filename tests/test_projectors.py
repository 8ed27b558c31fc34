"""The contract every projector follows (scikit-learn style), parametrized over all of them."""

import numpy as np
import pytest
import torch

from losstopo import Grid, Trajectory, evaluate
from losstopo.errors import (
    CheckpointError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
)
from losstopo.projectors import (
    AutoEncoderProjector,
    KernelPCAProjector,
    NoInverseError,
    PCAProjector,
    PHATEProjector,
    UMAPProjector,
)


def walk(n=20, p=60, seed=0):
    rng = np.random.default_rng(seed)
    return (5.0 + np.cumsum(rng.normal(size=(n, p)), axis=0)).astype(np.float32)


def make(name, k=2, seed=0):
    if name == "pca":
        return PCAProjector(n_components=k)
    if name == "kpca":
        return KernelPCAProjector(n_components=k, random_state=seed)
    if name == "umap":
        return UMAPProjector(n_components=k, n_neighbors=5, random_state=seed)
    if name == "phate":
        return PHATEProjector(n_components=k, random_state=seed)
    return AutoEncoderProjector(
        n_components=k, hidden=(32, 32), max_epochs=200, random_state=seed, progress=False
    )


ALL = ["pca", "kpca", "umap", "phate", "ae"]
DECODERS = ["pca", "kpca", "umap", "ae"]
OWNER = {
    "pca": "PCAProjector",
    "kpca": "KernelPCAProjector",
    "umap": "UMAPProjector",
    "phate": "PHATEProjector",
    "ae": "AutoEncoderProjector",
}


@pytest.fixture(scope="module")
def X():
    return walk()


@pytest.fixture(scope="module")
def fitted(X):
    return {name: make(name).fit(X) for name in ALL}


@pytest.mark.parametrize("name", ALL)
def test_not_fitted(name, X):
    proj = make(name)
    with pytest.raises(NotFittedError, match="not fitted yet; call 'fit'"):
        proj.transform(X)
    if name != "phate":
        with pytest.raises(NotFittedError):
            proj.inverse_transform(np.zeros((1, 2)))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [0, 4, 2.5, True, "2"])
def test_n_components_validation(name, bad, X):
    msg = (
        rf"The 'n_components' parameter of {OWNER[name]} must be an int in the range \[1, 3\]\. "
        rf"Got {bad!r} instead\."
    )
    with pytest.raises(InvalidParameterError, match=msg):
        make(name, k=bad).fit(X)


@pytest.mark.parametrize("name", ALL)
def test_init_only_stores_parameters(name):
    proj = make(name, k=7)  # no validation before fit
    assert proj.get_params()["n_components"] == 7
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(proj))


@pytest.mark.parametrize("name", DECODERS)
def test_round_trip_shapes(name, X, fitted):
    proj = fitted[name]
    coords = proj.transform(X)
    assert coords.shape == (len(X), 2) and np.all(np.isfinite(coords))
    back = proj.inverse_transform(coords)
    assert back.shape == X.shape and back.dtype == np.float64
    assert proj.inverse_transform(coords[0]).shape == (1, X.shape[1])
    assert proj.n_components_ == 2 and proj.n_params_ == X.shape[1]
    assert isinstance(proj.fingerprint(), str) and proj.describe()["name"] == OWNER[name]


@pytest.mark.parametrize("name", ALL)
def test_deterministic_with_random_state(name, X, fitted):
    again = make(name).fit(X)
    np.testing.assert_allclose(again.transform(X), fitted[name].transform(X), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ALL)
def test_accepts_trajectory_or_array(name, X, fitted):
    traj = Trajectory(X, np.arange(len(X)), np.full(len(X), "a"))
    np.testing.assert_allclose(fitted[name].transform(traj), fitted[name].transform(X), atol=1e-9)


@pytest.mark.parametrize("name", ALL)
def test_one_checkpoint_is_refused(name, X):
    with pytest.raises(InvalidParameterError, match=r"needs at least \d+ checkpoints"):
        make(name).fit(X[:1])


@pytest.mark.parametrize("name", ALL)
def test_nan_or_inf_checkpoint(name, X):
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(InvalidParameterError, match="NaN or inf in row 3"):
        make(name).fit(bad)
    bad[3, 5] = np.inf
    with pytest.raises(InvalidParameterError, match="NaN or inf in row 3"):
        make(name).fit(bad)


@pytest.mark.parametrize("name", ALL)
def test_wrong_number_of_parameters(name, X, fitted):
    with pytest.raises(ShapeMismatchError, match="parameters"):
        fitted[name].transform(X[:, :10])


@pytest.mark.parametrize("name", ["kpca", "ae"])
def test_constant_coordinate(name):
    X = walk(12, 30)
    X[:, 4] = 3.0  # a frozen parameter: zero variance, no division by zero
    proj = make(name).fit(X)
    back = proj.inverse_transform(proj.transform(X))
    assert np.all(np.isfinite(back))
    np.testing.assert_allclose(back[:, 4], 3.0, atol=1e-6)


def test_pca_round_trips_exactly_in_span(X, fitted):
    pca = fitted["pca"]
    rng = np.random.default_rng(1)
    pts = pca.inverse_transform(rng.normal(size=(7, 2)))
    np.testing.assert_allclose(
        pca.inverse_transform(pca.transform(pts)), pts, rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("k", [1, 3])
def test_other_latent_dimensions(k, X):
    for name in ("pca", "kpca", "ae"):
        proj = make(name, k=k).fit(X)
        assert proj.transform(X).shape == (len(X), k)
        assert proj.inverse_transform(np.zeros((2, k))).shape == (2, X.shape[1])


def test_phate_has_no_inverse(X, fitted, tiny_model, tiny_data):
    with pytest.raises(NoInverseError, match="AutoEncoderProjector.*embed_with_loss"):
        fitted["phate"].inverse_transform(np.zeros((1, 2)))
    assert isinstance(NoInverseError("x"), NotImplementedError)


def test_evaluate_with_phate_names_decoders(tiny_model, tiny_data):
    traj = _tiny_traj(tiny_model)
    phate = PHATEProjector(random_state=0).fit(traj)
    with pytest.raises(
        NoInverseError, match="KernelPCAProjector, UMAPProjector, AutoEncoderProjector"
    ):
        evaluate(tiny_model, tiny_data, "cross_entropy", phate, Grid.square(3), progress=False)
    paths = phate.embed_with_loss(traj, tiny_model, tiny_data, "cross_entropy")
    assert set(paths) == {"run0"} and paths["run0"].coords.shape == (len(traj), 2)
    assert np.all(np.isfinite(paths["run0"].loss))


def _tiny_traj(model, n=12):
    rng = np.random.default_rng(0)
    from losstopo import ParameterSpace

    base = ParameterSpace.from_module(model).flatten(model).numpy()
    steps = np.cumsum(rng.normal(scale=0.05, size=(n, base.size)), axis=0)
    return Trajectory((base + steps).astype(np.float32), np.arange(n), np.full(n, "run0"))


def test_checkpoints_from_different_architectures(tmp_path):
    a = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    b = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2))
    torch.save(a.state_dict(), tmp_path / "ckpt_1.pt")
    torch.save(b.state_dict(), tmp_path / "ckpt_2.pt")
    with pytest.raises(CheckpointError, match=r"Tensor '0\.weight'"):
        Trajectory.from_checkpoints(tmp_path, a)
    ta, tb = Trajectory.from_models([a, a]), Trajectory.from_models([b, b])
    with pytest.raises(ShapeMismatchError, match="different parameter spaces"):
        Trajectory.concat([ta, tb])
