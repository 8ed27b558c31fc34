"""The parameter-space Hessian against explicit Hessians of tiny models (float64 autograd)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

from losstopo import (
    Grid,
    HessianProjector,
    LossField,
    ParameterSpace,
    PlaneProjector,
    analyze,
    check_critical_points,
    evaluate,
    hessian_density,
    hessian_eigenvalues,
    hessian_trace,
    hvp,
    random_directions,
)
from losstopo.errors import DataError, EvaluationError, InvalidParameterError, InvalidTypeError
from losstopo.hessian.lanczos import rademacher
from losstopo.models import SmallCNN


def tanh_mlp() -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 6),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 3),
    )
    x, y = torch.randn(60, 5), torch.randint(0, 3, (60,))
    return model, (x, y)


def bn_cnn() -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(1)
    model = SmallCNN(1, 3, width=2)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x, y = torch.randn(24, 1, 6, 6), torch.randint(0, 3, (24,))
    return model, (x, y)


def explicit_hessian(model: torch.nn.Module, data: tuple) -> np.ndarray:
    """The float64 Hessian of the mean cross-entropy, from torch.autograd.functional.hessian."""
    import copy

    net = copy.deepcopy(model).double().eval()
    space = ParameterSpace.from_module(net)
    x, y = data

    def f(flat: torch.Tensor) -> torch.Tensor:
        out = functional_call(net, space.unflatten(flat), (x.double(),))
        return torch.nn.functional.cross_entropy(out, y)

    return torch.autograd.functional.hessian(f, space.flatten(net).double()).numpy()


MODELS = {"tanh-mlp": tanh_mlp, "bn-cnn": bn_cnn}


@pytest.fixture(params=sorted(MODELS), scope="module")
def case(request):
    model, data = MODELS[request.param]()
    return model, data, explicit_hessian(model, data)


def rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def test_products_equal_explicit_hessian(case):
    model, data, H = case
    op = hvp(model, data, "cross_entropy", device="cpu", batch_size=7)  # odd batches: weighting
    v = np.random.default_rng(0).standard_normal(op.shape[0])
    assert rel(op @ v, H @ v) < 1e-5
    assert op.n_hvp == 1 and (op @ v).dtype == np.float64


def test_forward_over_reverse_equals_reverse_over_reverse(case):
    model, data, H = case
    op = hvp(model, data, "cross_entropy", device="cpu", mode="forward-over-reverse")
    v = np.random.default_rng(1).standard_normal(op.shape[0])
    assert rel(op @ v, H @ v) < 1e-5


def test_products_do_not_touch_the_model(case):
    model, data, _ = case
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    hvp(model, data, "cross_entropy", device="cpu") @ np.ones(
        ParameterSpace.from_module(model).n_params
    )
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
def test_extreme_eigenvalues_equal_explicit(case, which):
    model, data, H = case
    exact = np.linalg.eigvalsh(H)[::-1]
    spec = hessian_eigenvalues(
        model, data, "cross_entropy", k=3, which=which, tol=1e-8, device="cpu"
    )
    want = {
        "largest": exact[:3],
        "smallest": exact[-3:],
        "both": np.concatenate([exact[:3], exact[-3:]]),
    }[which]
    scale = np.abs(exact).max()
    assert np.max(np.abs(spec.eigenvalues - want)) / scale < 1e-4
    assert spec.attrs["method"] == "lanczos"
    # eigenvectors: unit rows with H u = lambda u
    for lam, u in zip(spec.eigenvalues, spec.eigenvectors, strict=True):
        assert abs(np.linalg.norm(u) - 1) < 1e-8
        assert np.linalg.norm(H @ u - lam * u) / scale < 1e-3


def test_smallest_is_negative_away_from_a_minimum(case):
    model, data, H = case
    spec = hessian_eigenvalues(model, data, "cross_entropy", k=1, which="smallest", tol=1e-6)
    assert np.linalg.eigvalsh(H)[0] < 0 and spec.lambda_min < 0


def test_trace_within_three_standard_errors(case):
    model, data, H = case
    tr = hessian_trace(model, data, "cross_entropy", n_samples=100, seed=3, device="cpu")
    assert abs(tr.value - np.trace(H)) <= 3 * tr.stderr
    assert tr.n_hvp == 100 and tr.samples.shape == (100,)


def test_density_quadrature_is_exact_for_low_moments(case):
    model, data, H = case
    n = H.shape[0]
    dens = hessian_density(model, data, "cross_entropy", steps=6, n_runs=2, seed=5, device="cpu")
    # each run is Gauss quadrature of v^T H^p v / |v|^2 with the run's start vector: exact for
    # p < 2 * steps; the start vectors are Rademacher from seed + run
    for r in range(2):
        v = rademacher(n, np.random.default_rng(5 + r)) / np.sqrt(n)
        for p in (1, 2, 3):
            want = v @ np.linalg.matrix_power(H, p) @ v
            got = np.sum(dens.weights[r] * dens.nodes[r] ** p)
            assert abs(got - want) <= 1e-4 * abs(want) + 1e-10
    assert abs(np.trapezoid(dens.density, dens.grid) - 1) < 1e-3


def test_plane_restricted_hessian_equals_explicit(case):
    model, data, H = case
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=1))
    field = evaluate(
        model,
        data,
        "cross_entropy",
        proj,
        Grid.square(resolution=9, extent=0.5),
        progress=False,
        device="cpu",
    )
    check = check_critical_points(
        model,
        data,
        "cross_entropy",
        field,
        analyze(field),
        projector=proj,
        steps=3,
        device="cpu",
    )
    assert len(check) >= 1 and check.jacobian == "exact"
    D = proj.components_.T.astype(np.float64)
    # at the centre the decoded point is the model itself; elsewhere compare with a fresh hvp
    for i in range(min(len(check), 2)):
        point = proj.inverse_transform(check.coords[i][None])[0]
        op = hvp(model, data, "cross_entropy", point=point, device="cpu", dtype=torch.float64)
        want = D.T @ np.stack([op @ D[:, 0], op @ D[:, 1]], axis=1)
        assert rel(check.plane_hessian[i], want) < 1e-4


def test_plane_hessian_at_the_centre_matches_explicit_matrix(case):
    model, data, H = case
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=2))
    from losstopo.hessian import plane_hessian

    D = proj.components_.T.astype(np.float64)
    got = plane_hessian(hvp(model, data, "cross_entropy", device="cpu"), D)
    assert rel(got, D.T @ H @ D) < 1e-4


def test_hessian_projector_spans_top_eigenvectors(case):
    model, data, H = case
    proj = HessianProjector(model, data, "cross_entropy", n_components=2, tol=1e-8).fit()
    exact = np.linalg.eigvalsh(H)[::-1][:2]
    assert np.max(np.abs(proj.eigenvalues_ - exact)) / abs(exact[0]) < 1e-4
    C = proj.components_
    assert np.allclose(C @ C.T, np.eye(2), atol=1e-8)
    # the curvature along each direction is its eigenvalue
    assert np.allclose(np.diag(C @ H @ C.T), exact, rtol=1e-4)


def test_unused_parameters_give_zero_rows():
    torch.manual_seed(0)

    class Partial(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used = torch.nn.Linear(3, 2)
            self.unused = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.used(x)

    model = Partial()
    op = hvp(model, (torch.randn(8, 3), torch.randint(0, 2, (8,))), "cross_entropy")
    dense = op.dense()
    assert np.all(dense[8:] == 0) and np.all(dense[:, 8:] == 0)
    assert np.abs(dense[:8, :8]).max() > 0


def test_k_larger_than_parameters_names_the_maximum():
    model = torch.nn.Linear(2, 2)
    data = (torch.randn(4, 2), torch.randint(0, 2, (4,)))
    with pytest.raises(InvalidParameterError, match="the maximum is k=6"):
        hessian_eigenvalues(model, data, "cross_entropy", k=7)
    # k == n_params works (exact dense solve)
    assert hessian_eigenvalues(model, data, "cross_entropy", k=6).eigenvalues.shape == (6,)


def test_non_differentiable_model_is_named():
    class Rounded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x).detach()

    with pytest.raises(EvaluationError, match="differentiable"):
        hvp(Rounded(), (torch.randn(4, 3), torch.randint(0, 2, (4,))), "cross_entropy")


def test_empty_data_is_refused():
    with pytest.raises(DataError, match="empty"):
        hvp(torch.nn.Linear(2, 2), [], "cross_entropy")


def test_embedding_only_projector_cannot_be_checked():
    model, data = tanh_mlp()
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=1))
    field = evaluate(model, data, "cross_entropy", proj, Grid.square(resolution=5), progress=False)

    class EmbedOnly:
        decodes = False

    with pytest.raises(InvalidTypeError, match="cannot decode"):
        check_critical_points(model, data, "cross_entropy", field, projector=EmbedOnly())
    bare = LossField(field.values, field.grid)  # a field that carries no projector
    with pytest.raises(InvalidParameterError, match="projector="):
        check_critical_points(model, data, "cross_entropy", bare)
    assert len(check_critical_points(model, data, "cross_entropy", field, steps=3)) >= 1
