"""Parameter-space Hessian: product backends and top-5 eigenvalues, losstopo against the rest.

Run: ``python benchmarks/bench_hessian.py [--repeats 15]``. The comparison libraries are
optional and skipped when absent (the script installs nothing):

  pip install pyhessian "hessian-eigenthings>=1.0.0a5"    # the bench extra
  pip install --no-deps curvlinops-for-pytorch einops einconv linear_operator opt-einsum

(curvlinops' declared dependencies pull backpack-for-pytorch and torchvision, which the products
here do not need). Directories listed in ``LOSSTOPO_BENCH_PATH`` (``os.pathsep``-separated) are
put on ``sys.path`` first, for copies installed with ``pip install --no-deps --target DIR``.

Workload: ``MLP(64, (128, 128), 10)`` (26,122 parameters) trained 5 epochs (SGD, seed 0) on the
digits training split; the Hessian is that of the mean cross-entropy over all 1797 digits.
torch runs on one thread (``torch.set_num_threads(1)``, BLAS pinned too).

Part 1, one Hessian-vector product: the minimum over ``--repeats`` rounds, the backends
interleaved in each round (their order rotated from round to round), and the relative
difference of each product from losstopo's float64 product at the same vector:
  losstopo rr / fr   ``losstopo.hvp`` reverse-over-reverse / forward-over-reverse (float32)
  curvlinops         ``curvlinops.HessianLinearOperator`` (forward-over-reverse, torch.func)
  pyhessian          PyHessian's product on one batch: one backward through the stored graph of
                     the gradient (the forward and first backward are paid once, at setup)
  eigenthings        ``hessian_eigenthings.HessianOperator`` (double backward)

Part 2, the 5 largest eigenvalues to 1e-3 relative. Every method's products are counted by a
wrapper around its own product function; errors are relative to a reference from losstopo with
``tol=1e-10`` in float64:
  losstopo Lanczos                     ``hessian_eigenvalues(k=5, tol=1e-3)`` (ARPACK)
  PyHessian power iteration            ``hessian.eigenvalues(top_n=5, tol=1e-3)``: power
                                       iteration on each vector, orthogonalised against those
                                       found, stopped when the Rayleigh quotient changes by less
                                       than tol relative (at most 100 products each); when
                                       its error stays above 1e-3, rerun with tol / 10 until
                                       it does not (each run is a row)
  eigenthings deflated power iteration ``deflated_power_iteration(k=5, tol=1e-3)``: stops when
                                       both the relative change and the relative residual < tol
  eigenthings Lanczos (default)        ``lanczos(k=5, tol=1e-3)``: 2k = 10 steps, as shipped
"""

from __future__ import annotations

import os
import sys

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
for _p in reversed(os.environ.get("LOSSTOPO_BENCH_PATH", "").split(os.pathsep)):
    if _p and os.path.isdir(_p):
        sys.path.insert(0, _p)

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from machine import cpu_name  # noqa: E402
from torch import nn  # noqa: E402

from losstopo import hessian_eigenvalues, hvp, train  # noqa: E402
from losstopo.datasets import digits  # noqa: E402
from losstopo.models import MLP  # noqa: E402

TOL = 1e-3
K = 5


def optional(name: str) -> Any:
    try:
        return __import__(name)
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip this column"
        print(f"  ({name} not available: {type(exc).__name__}: {exc}; its rows are skipped)")
        return None


def trained_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = MLP(64, (128, 128), 10)
    train(model, digits(split="train"), epochs=5, lr=0.05, batch_size=64, seed=seed, progress=False)
    return model.eval()


def flat_params(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def to_list(v: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for p in params:
        out.append(v[i : i + p.numel()].view_as(p))
        i += p.numel()
    return out


class Counter:
    """Wraps a product function and counts its calls."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


# ---------------------------------------------------------------------------------- products
def product_functions(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """name -> (v: float64 numpy -> H v: float64 numpy) for every backend available."""
    data = (x, y)
    fns: dict[str, Any] = {}
    rr = hvp(model, data, "cross_entropy", device="cpu")
    fr = hvp(model, data, "cross_entropy", device="cpu", mode="forward-over-reverse")
    fns["losstopo rr"] = rr.matvec
    fns["losstopo fr"] = fr.matvec

    curvlinops = optional("curvlinops")
    if curvlinops is not None:
        net = copy.deepcopy(model)
        op = curvlinops.HessianLinearOperator(
            net, nn.CrossEntropyLoss(), flat_params(net), [(x, y)], check_deterministic=False
        )
        fns["curvlinops"] = lambda v: (op @ torch.as_tensor(v, dtype=torch.float32)).double()
    if optional("pyhessian") is not None:
        ph_module, ph_utils = pyhessian_modules()
        net = copy.deepcopy(model)
        ph = ph_module.hessian(net, nn.CrossEntropyLoss(), data=(x, y), cuda=False)

        def ph_product(v: np.ndarray) -> torch.Tensor:
            vt = to_list(torch.as_tensor(v, dtype=torch.float32), ph.params)
            hv = ph_utils.hessian_vector_product(ph.gradsH, ph.params, vt)
            return torch.cat([h.reshape(-1) for h in hv]).double()

        fns["pyhessian"] = ph_product
    eig = optional("hessian_eigenthings")
    if eig is not None:
        net = copy.deepcopy(model)
        H = eig.HessianOperator(net, [(x, y)], eig.supervised_loss(nn.functional.cross_entropy))
        fns["eigenthings"] = lambda v: H.matvec(torch.as_tensor(v, dtype=torch.float32)).double()
    return fns


def time_products(fns: dict[str, Any], n: int, repeats: int) -> dict[str, tuple[float, float]]:
    """name -> (seconds per product, relative difference from the float64 product)."""
    rng = np.random.default_rng(1)
    v = rng.standard_normal(n)
    ref = np.asarray(fns["losstopo f64"](v), dtype=np.float64)
    names = [k for k in fns if k != "losstopo f64"]
    best = dict.fromkeys(names, float("inf"))
    diff = {}
    for name in names:  # warm-up, and the agreement check
        out = np.asarray(fns[name](v), dtype=np.float64)
        diff[name] = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
    for r in range(repeats):
        # interleaved, and the order rotated each round: every backend sees the same load
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            fns[name](v)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {k: (best[k], diff[k]) for k in names}


# ------------------------------------------------------------------------------- eigenvalues
def rel_err(vals: np.ndarray, ref: np.ndarray) -> float:
    vals = np.sort(np.asarray(vals, dtype=np.float64))[::-1][: len(ref)]
    return float(np.max(np.abs(vals - ref) / np.abs(ref)))


def run_losstopo(model: nn.Module, data: Any) -> tuple[np.ndarray, int, float]:
    t0 = time.perf_counter()
    spec = hessian_eigenvalues(model, data, "cross_entropy", k=K, tol=TOL, seed=0, device="cpu")
    return spec.eigenvalues, spec.n_hvp, time.perf_counter() - t0


def pyhessian_modules() -> tuple[Any, Any]:
    # the package re-exports the class under its module's name, so take the modules themselves
    return importlib.import_module("pyhessian.hessian"), importlib.import_module("pyhessian.utils")


def run_pyhessian(model: nn.Module, data: Any, tol: float) -> tuple[np.ndarray, int, float]:
    ph_module, ph_utils = pyhessian_modules()
    net = copy.deepcopy(model)
    counter = Counter(ph_utils.hessian_vector_product)
    original = ph_module.hessian_vector_product
    ph_module.hessian_vector_product = counter  # the name its eigenvalue loop calls
    try:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        ph = ph_module.hessian(net, nn.CrossEntropyLoss(), data=data, cuda=False)
        vals, _ = ph.eigenvalues(maxIter=100, tol=tol, top_n=K)
        seconds = time.perf_counter() - t0
    finally:
        ph_module.hessian_vector_product = original
    return np.asarray(vals), counter.calls, seconds


def run_eigenthings(eig: Any, model: nn.Module, data: Any, method: str) -> tuple:
    net = copy.deepcopy(model)
    H = eig.HessianOperator(net, [data], eig.supervised_loss(nn.functional.cross_entropy))
    counter = Counter(H.matvec)
    H.matvec = counter  # deflated operators call base.matvec, so every product is counted
    t0 = time.perf_counter()
    if method == "power":
        res = eig.deflated_power_iteration(H, k=K, tol=TOL, max_iter=100, seed=0)
    else:
        res = eig.lanczos(H, k=K, tol=TOL, seed=0)
    seconds = time.perf_counter() - t0
    return res.eigenvalues.double().cpu().numpy(), counter.calls, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # PyHessian's setup calls backward(create_graph=True), which warns about a reference cycle
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
    print(f"{cpu_name()}; torch {torch.__version__}, 1 thread; {datetime.date.today()}")

    model = trained_model()
    x, y = digits(split="all")
    data = (x, y)
    n = sum(p.numel() for p in model.parameters())
    print(
        f"MLP 64-128-128-10, {n} parameters, Hessian of the mean cross-entropy on {len(x)} digits"
    )

    # ----------------------------------------------------------------- part 1: products
    fns = product_functions(model, x, y)
    f64 = hvp(model, data, "cross_entropy", device="cpu", dtype=torch.float64)
    fns["losstopo f64"] = f64.matvec
    times = time_products(fns, n, args.repeats)
    base = times["losstopo rr"][0]
    print(f"\nOne Hessian-vector product (min of {args.repeats} interleaved rounds, 1 thread)")
    print("| backend | ms per product | vs losstopo rr | rel. diff. from float64 |")
    print("|---|---:|---:|---:|")
    for name, (sec, d) in times.items():
        print(f"| {name} | {sec * 1e3:.1f} | {sec / base:.2f}x | {d:.1e} |")

    # ----------------------------------------------------------------- part 2: eigenvalues
    t0 = time.perf_counter()
    ref = hessian_eigenvalues(
        model, data, "cross_entropy", k=K, tol=1e-10, seed=1, device="cpu", dtype=torch.float64
    )
    print(
        f"\nReference (losstopo, tol=1e-10, float64): {np.array2string(ref.eigenvalues, precision=6)}"
        f" ({ref.n_hvp} products, {time.perf_counter() - t0:.1f} s)"
    )
    rows: list[tuple[str, np.ndarray, int, float]] = []
    vals, count, sec = run_losstopo(model, data)
    rows.append(("losstopo Lanczos (ARPACK), tol 1e-3", vals, count, sec))
    if "pyhessian" in sys.modules:
        tol = TOL
        while True:  # its own stopping rule first, then tightened until the error is < 1e-3
            vals, count, sec = run_pyhessian(model, data, tol)
            label = f"tol 1e-{round(-np.log10(tol))}"
            rows.append((f"PyHessian power iteration + deflation, {label}", vals, count, sec))
            if rel_err(vals, ref.eigenvalues) <= TOL or tol <= 1e-6:
                break
            tol /= 10
    eig = sys.modules.get("hessian_eigenthings")
    if eig is not None:
        vals, count, sec = run_eigenthings(eig, model, data, "power")
        rows.append(("eigenthings deflated power iteration, tol 1e-3", vals, count, sec))
        vals, count, sec = run_eigenthings(eig, model, data, "lanczos")
        rows.append(("eigenthings Lanczos (default 10 steps)", vals, count, sec))

    print(f"\nTop {K} eigenvalues to 1e-3 relative (1 thread)")
    print("| method | HVPs | seconds | max rel. error | eigenvalues |")
    print("|---|---:|---:|---:|---|")
    for name, vals, count, sec in rows:
        shown = ", ".join(f"{v:.5g}" for v in np.sort(vals)[::-1])
        print(f"| {name} | {count} | {sec:.2f} | {rel_err(vals, ref.eigenvalues):.1e} | {shown} |")
    lanczos_hvp = rows[0][2]
    for name, vals, count, _ in rows[1:]:
        ok = "error <= 1e-3" if rel_err(vals, ref.eigenvalues) <= TOL else "error > 1e-3"
        print(f"HVP ratio {name} / losstopo Lanczos: {count / lanczos_hvp:.1f}x ({ok})")


if __name__ == "__main__":
    main()
