"""The contract every projector follows (scikit-learn style), parametrized over all of them."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA, KernelPCA
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from losstopo import Grid, Trajectory, evaluate
from losstopo.errors import (
    CheckpointError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
)
from losstopo.projectors import (
    PROJECTORS,
    LinearDecoder,
    NoInverseError,
    PCAProjector,
    PHATEProjector,
    PlaneProjector,
    decoding_projectors,
    is_fitted,
    make_projector,
)


def walk(n=20, p=60, seed=0):
    rng = np.random.default_rng(seed)
    return (5.0 + np.cumsum(rng.normal(size=(n, p)), axis=0)).astype(np.float32)


def make(name, k=2, seed=0):
    """A small, fast configuration of each learned projector (options a class lacks are dropped)."""
    return make_projector(
        name,
        n_components=k,
        random_state=seed,
        n_neighbors=5,
        hidden=(32, 32),
        max_epochs=200,
        progress=False,
    )


def plane(X, k=2):
    """A plane through the last checkpoint along the first steps of the walk."""
    return PlaneProjector(X[-1], np.diff(X[: k + 1], axis=0))


def build(name, X, k=2):
    """Every registered kind: fitted plane, unfitted others."""
    return plane(X, k) if name == "plane" else make(name, k)


LEARNED = ["pca", "kpca", "umap", "phate", "autoencoder"]
DECODERS = ["pca", "kpca", "umap", "autoencoder"]
RANDOM = ["umap", "phate", "autoencoder"]  # the ones whose fit depends on random_state
OWNER = {name: cls.__name__ for name, cls in PROJECTORS.items()}


@pytest.fixture(scope="module")
def X():
    return walk()


@pytest.fixture(scope="module")
def fitted(X):
    return {name: build(name, X).fit(X) for name in PROJECTORS}


# ---------------------------------------------------------------------- scikit-learn contract
@pytest.mark.parametrize("name", LEARNED)
def test_not_fitted(name, X):
    proj = make(name)
    assert not is_fitted(proj)
    with pytest.raises(NotFittedError, match="not fitted yet; call 'fit'"):
        proj.check_fitted()
    with pytest.raises(NotFittedError, match="not fitted yet; call 'fit'"):
        proj.transform(X)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(proj)
    if name != "phate":
        with pytest.raises(NotFittedError):
            proj.inverse_transform(np.zeros((1, 2)))
        with pytest.raises(NotFittedError):
            proj.decoder()
    assert issubclass(NotFittedError, AttributeError) and issubclass(NotFittedError, ValueError)


@pytest.mark.parametrize("name", list(PROJECTORS))
def test_fitted_checks_agree(name, fitted):
    proj = fitted[name]
    assert is_fitted(proj)
    proj.check_fitted()
    check_is_fitted(proj)  # scikit-learn's own check passes
    assert proj.n_components_ == 2 and proj.n_params_ == 60


@pytest.mark.parametrize("name", list(PROJECTORS))
def test_clone_gives_an_unfitted_copy_with_the_same_parameters(name, X, fitted):
    proj = fitted[name]
    copy = clone(proj)
    assert type(copy) is type(proj) and copy is not proj
    assert set(copy.get_params()) == set(proj.get_params())
    for key, value in proj.get_params(deep=False).items():
        np.testing.assert_array_equal(np.asarray(copy.get_params()[key]), np.asarray(value))
    if name == "plane":  # built from its directions: fitted on construction, clone included
        assert is_fitted(copy)
        np.testing.assert_array_equal(copy.components_, proj.components_)
    else:
        assert not is_fitted(copy) and is_fitted(proj)


@pytest.mark.parametrize("name", list(PROJECTORS))
def test_get_params_deep_and_set_params(name, X):
    proj = build(name, X)
    shallow = proj.get_params(deep=False)
    assert proj.get_params(deep=True).keys() == shallow.keys()  # no nested estimators
    if name == "plane":
        new_dirs = np.diff(X[2:5], axis=0)
        assert proj.set_params(directions=new_dirs) is proj
        assert proj.directions is new_dirs
        np.testing.assert_array_equal(proj.components_, new_dirs)  # basis rebuilt
    else:
        assert proj.set_params(n_components=3) is proj
        assert proj.get_params()["n_components"] == 3 and proj.n_components == 3
    with pytest.raises(ValueError, match="Invalid parameter 'no_such'"):
        proj.set_params(no_such=1)


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize("bad", [0, 4, 2.5, True, "2"])
def test_n_components_validation(name, bad, X):
    msg = (
        rf"The 'n_components' parameter of {OWNER[name]} must be an int in the range \[1, 3\]\. "
        rf"Got {bad!r} instead\."
    )
    with pytest.raises(InvalidParameterError, match=msg):
        make(name, k=bad).fit(X)


@pytest.mark.parametrize("name", LEARNED)
def test_init_only_stores_parameters(name):
    proj = make(name, k=7)  # no validation before fit
    assert proj.get_params()["n_components"] == 7
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(proj))


@pytest.mark.parametrize("name", RANDOM)
def test_seeded_fit_is_reproducible(name, X, fitted):
    again = clone(fitted[name]).fit(X)
    np.testing.assert_allclose(again.transform(X), fitted[name].transform(X), rtol=1e-7, atol=1e-9)
    assert again.fingerprint() == fitted[name].fingerprint()


# ---------------------------------------------------------------------- maps against references
@pytest.mark.parametrize("name", ["plane", "pca"])
def test_linear_round_trip_is_exact(name, fitted):
    proj = fitted[name]
    coords = np.random.default_rng(1).normal(size=(7, 2))
    np.testing.assert_allclose(
        proj.transform(proj.inverse_transform(coords)), coords, rtol=1e-10, atol=1e-10
    )
    pts = proj.inverse_transform(coords)  # points of the span come back exactly too
    np.testing.assert_allclose(
        proj.inverse_transform(proj.transform(pts)), pts, rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("center", ["last", "mean"])
def test_pca_matches_scikit_learn(center, X):
    ours = PCAProjector(n_components=2, center=center).fit(X)
    ref = PCA(n_components=2, svd_solver="full").fit(X.astype(np.float64))
    signs = np.sign(np.sum(ours.components_ * ref.components_, axis=1))
    np.testing.assert_allclose(ours.components_, signs[:, None] * ref.components_, atol=1e-9)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(
        ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-9
    )
    origin = X[-1] if center == "last" else ref.mean_
    np.testing.assert_allclose(ours.center_, origin, rtol=1e-6)
    expected = (X.astype(np.float64) - origin) @ ref.components_.T * signs
    np.testing.assert_allclose(ours.transform(X), expected, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_kernel_pca_matches_scikit_learn(k, X):
    ours = make("kpca", k=k).fit(X)
    Z = (X.astype(np.float64) - ours.mean_) / ours.scale_
    d2 = np.sum((Z[:, None] - Z[None]) ** 2, axis=-1)[np.triu_indices(len(Z), 1)]
    assert ours.gamma_ == pytest.approx(1.0 / np.median(d2))
    ref = KernelPCA(
        n_components=k, kernel="rbf", gamma=ours.gamma_, fit_inverse_transform=True, alpha=1e-4
    ).fit(Z)
    coords = ref.transform(Z)
    signs = np.sign(np.sum(ours.transform(X) * coords, axis=0))
    np.testing.assert_allclose(ours.transform(X), coords * signs, atol=1e-8)
    np.testing.assert_allclose(
        ours.inverse_transform(coords * signs),
        ref.inverse_transform(coords) * ours.scale_ + ours.mean_,
        rtol=1e-8,
    )


def test_umap_matches_umap_learn(X, fitted):
    proj = fitted["umap"]
    np.testing.assert_array_equal(proj.transform(X), proj.embedding_)
    np.testing.assert_array_equal(proj.embedding_, proj.umap_.embedding_)
    coords = proj.embedding_[:5] + 0.1
    expected = proj.umap_.inverse_transform(coords) * proj.scale_ + proj.mean_
    np.testing.assert_allclose(proj.inverse_transform(coords), expected, rtol=1e-6)  # float32
    Z = (X[:3].astype(np.float64) + 0.5 - proj.mean_) / proj.scale_  # not a fitted checkpoint
    np.testing.assert_allclose(proj.transform(X[:3] + 0.5), proj.umap_.transform(Z), rtol=1e-6)


@pytest.mark.parametrize("k", [1, 3])
def test_autoencoder_reconstructs_the_checkpoints_in_every_dimension(k, X):
    proj = make("autoencoder", k=k).set_params(exact=True).fit(X)
    coords = proj.transform(X)
    assert coords.shape == (len(X), k) and np.all(np.abs(coords) <= 1)
    err = np.linalg.norm(proj.inverse_transform(coords) - X, axis=1) / np.linalg.norm(X, axis=1)
    assert err.max() < 1e-6  # exact up to the conditioning of the residual interpolant


@pytest.mark.parametrize("name", DECODERS)
def test_decoded_points_are_float64_rows(name, X, fitted):
    proj = fitted[name]
    coords = proj.transform(X)
    back = proj.inverse_transform(coords)
    assert back.dtype == np.float64
    if name != "umap":  # umap-learn's inverse optimises the whole batch together
        np.testing.assert_allclose(proj.inverse_transform(coords[0]), back[:1], rtol=1e-12)
    assert proj.describe()["name"] == OWNER[name]


# ---------------------------------------------------------------------- decoders
@pytest.mark.parametrize("name", ["plane", "pca"])
def test_linear_decoder_holds_the_projector_arrays(name, fitted):
    proj = fitted[name]
    dec = proj.decoder()
    assert isinstance(dec, LinearDecoder)
    assert dec.center is proj.center_ and dec.components is proj.components_
    coords = np.array([[0.25, -1.5], [2.0, 0.0]])
    expected = proj.center_.astype(np.float64) + coords @ proj.components_.astype(np.float64)
    out = dec(coords)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, proj.inverse_transform(coords))


@pytest.mark.parametrize("name", ["kpca", "umap", "autoencoder"])
def test_nonlinear_decoder_is_inverse_transform(name, fitted):
    proj = fitted[name]
    dec = proj.decoder()
    assert dec == proj.inverse_transform and dec.__self__ is proj
    coords = proj.transform(walk()[:3])
    np.testing.assert_array_equal(dec(coords), proj.inverse_transform(coords))


def test_phate_has_no_inverse(fitted):
    phate = fitted["phate"]
    with pytest.raises(NoInverseError, match="AutoEncoderProjector.*embed_with_loss"):
        phate.inverse_transform(np.zeros((1, 2)))
    with pytest.raises(NoInverseError, match=", ".join(decoding_projectors())):
        phate.decoder()
    assert isinstance(NoInverseError("x"), NotImplementedError)


def test_evaluate_with_phate_names_decoders(tiny_model, tiny_data):
    traj = _tiny_traj(tiny_model)
    phate = PHATEProjector(random_state=0).fit(traj)
    with pytest.raises(
        NoInverseError, match="KernelPCAProjector, UMAPProjector, AutoEncoderProjector"
    ):
        evaluate(tiny_model, tiny_data, "cross_entropy", phate, Grid.square(3), progress=False)


def _tiny_traj(model, n=12):
    rng = np.random.default_rng(0)
    from losstopo import ParameterSpace

    base = ParameterSpace.from_module(model).flatten(model).numpy()
    steps = np.cumsum(rng.normal(scale=0.05, size=(n, base.size)), axis=0)
    return Trajectory((base + steps).astype(np.float32), np.arange(n), np.full(n, "run0"))


def test_fingerprint_follows_the_fitted_map(X, fitted):
    for name in ("plane", "pca", "kpca"):  # deterministic fits: refitting gives the same map
        assert clone(fitted[name]).fit(X).fingerprint() == fitted[name].fingerprint()
    assert PCAProjector(2).fit(X[:10]).fingerprint() != fitted["pca"].fingerprint()
    assert len({p.fingerprint() for p in fitted.values()}) == len(fitted)


# ---------------------------------------------------------------------- registry
def test_registry_names_every_projector_and_its_decoding():
    assert list(PROJECTORS) == ["plane", "pca", "kpca", "umap", "phate", "autoencoder"]
    assert decoding_projectors() == [
        "PlaneProjector",
        "PCAProjector",
        "KernelPCAProjector",
        "UMAPProjector",
        "AutoEncoderProjector",
    ]
    assert [n for n, c in PROJECTORS.items() if not c.decodes] == ["phate"]
    assert [n for n, c in PROJECTORS.items() if c.linear] == ["plane", "pca"]


def test_make_projector_passes_only_what_a_class_takes():
    pca = make_projector("pca", n_components=3, random_state=5, center="mean")
    assert pca.get_params() == {"n_components": 3, "center": "mean", "ignore": None}
    ae = make_projector("autoencoder", n_components=3, random_state=5, progress=False)
    params = ae.get_params()
    assert (params["n_components"], params["random_state"], params["progress"]) == (3, 5, False)
    assert make_projector("umap").get_params()["random_state"] == 0
    assert not any(is_fitted(make_projector(n)) for n in PROJECTORS if n != "plane")


def test_make_projector_refusals():
    with pytest.raises(InvalidParameterError, match=r"needs a centre and directions.*PlaneProj"):
        make_projector("plane")
    with pytest.raises(
        InvalidParameterError,
        match="Unknown projector 'tsne'; choose one of 'pca', 'kpca', 'umap', 'phate', "
        "'autoencoder'",
    ):
        make_projector("tsne")


# ---------------------------------------------------------------------- input checks
@pytest.mark.parametrize("name", list(PROJECTORS))
def test_accepts_trajectory_or_array(name, X, fitted):
    traj = Trajectory(X, np.arange(len(X)), np.full(len(X), "a"))
    np.testing.assert_allclose(fitted[name].transform(traj), fitted[name].transform(X), atol=1e-9)
    as_tensor = fitted[name].transform(torch.as_tensor(X))
    np.testing.assert_allclose(as_tensor, fitted[name].transform(X), atol=1e-9)


@pytest.mark.parametrize("name", LEARNED)
def test_one_checkpoint_is_refused(name, X):
    with pytest.raises(InvalidParameterError, match=r"needs at least \d+ checkpoints"):
        make(name).fit(X[:1])


@pytest.mark.parametrize("name", LEARNED)
def test_nan_or_inf_checkpoint(name, X):
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(InvalidParameterError, match="NaN or inf in row 3"):
        make(name).fit(bad)
    bad[3, 5] = np.inf
    with pytest.raises(InvalidParameterError, match="NaN or inf in row 3"):
        make(name).fit(bad)


@pytest.mark.parametrize("name", list(PROJECTORS))
def test_wrong_number_of_parameters(name, X, fitted):
    with pytest.raises(ShapeMismatchError, match="The points have 10 parameters .* on 60"):
        fitted[name].transform(X[:, :10])


@pytest.mark.parametrize("name", ["kpca", "autoencoder"])
def test_constant_coordinate(name):
    X = walk(12, 30)
    X[:, 4] = 3.0  # a frozen parameter: zero variance, no division by zero
    proj = make(name).fit(X)
    back = proj.inverse_transform(proj.transform(X))
    assert np.all(np.isfinite(back))
    np.testing.assert_allclose(back[:, 4], 3.0, atol=1e-6)


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
