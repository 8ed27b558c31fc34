"""Benchmark: mode connectivity and permutation alignment of two digits MLPs from different seeds.

Run with ``python benchmarks/bench_connectivity.py`` (1 thread; ``--quick`` for two sizes only).
For each MLP (one and two hidden layers, widths 64 to 256), two runs trained from seeds 0 and 1
outside the timed regions, it prints on the training data:

1. the naive straight-path barrier;
2. the barrier after weight matching and after activation matching, and each one's time;
3. the same for the ``rebasin`` package (PyPI, Git Re-Basin's weight matching) when it can be
   imported (``--rebasin-path DIR``: a folder it was installed into with ``pip install --no-deps
   --target DIR rebasin torchview graphviz``), or the reason it could not run;
4. the barrier of a trained quadratic Bezier curve, its highest loss over the larger endpoint
   loss, and the training time.

Acceptance: weight matching <= 15% of the naive barrier; Bezier <= 10% of the straight path's,
highest loss along the curve <= 2x the endpoint losses.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from losstopo import train  # noqa: E402
from losstopo.alignment import activation_matching, apply_permutation, weight_matching  # noqa: E402
from losstopo.connectivity import fit_curve, interpolate  # noqa: E402
from losstopo.datasets import digits  # noqa: E402
from losstopo.models import MLP  # noqa: E402

torch.set_num_threads(1)

SIZES = [(64,), (128,), (256,), (64, 64), (128, 128), (256, 256)]
QUICK = [(128,), (128, 128)]


def rebasin_match(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> tuple[Any, float]:
    """B aligned to A by the ``rebasin`` package, and the time it took (or the failure)."""
    try:
        from rebasin import PermutationCoordinateDescent
    except Exception as exc:  # noqa: BLE001 - report any import failure
        return f"not run: {type(exc).__name__}: {exc}", 0.0
    aligned = copy.deepcopy(b)
    t0 = time.perf_counter()
    try:
        PermutationCoordinateDescent(a, aligned, x[:8]).rebasin()
    except Exception as exc:  # noqa: BLE001
        return f"failed: {type(exc).__name__}: {exc}", 0.0
    return aligned, time.perf_counter() - t0


def run_size(
    hidden: tuple[int, ...], data: Any, test: Any, epochs: int, curve_epochs: int, curve_lr: float
) -> dict[str, Any]:
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MLP(64, hidden, 10)
        train(model, data, epochs=epochs, lr=0.1, seed=seed, progress=False)
        models.append(model)
    a, b = models
    n = 25
    row: dict[str, Any] = {"hidden": list(hidden)}
    naive = interpolate(a, b, data, "cross_entropy", n_points=n)
    row["end_losses"] = [round(v, 5) for v in naive.endpoint_losses]
    row["naive"] = naive.barrier
    t0 = time.perf_counter()
    perm = weight_matching(a, b)
    row["weights_seconds"] = time.perf_counter() - t0
    row["weights"] = interpolate(a, apply_permutation(b, perm), data, "cross_entropy", n).barrier
    t0 = time.perf_counter()
    perm = activation_matching(a, b, data)
    row["activations_seconds"] = time.perf_counter() - t0
    row["activations"] = interpolate(
        a, apply_permutation(b, perm), data, "cross_entropy", n
    ).barrier
    aligned, seconds = rebasin_match(a, b, data[0])
    if isinstance(aligned, str):
        row["rebasin"] = aligned
    else:
        row["rebasin"] = interpolate(a, aligned, data, "cross_entropy", n).barrier
        row["rebasin_seconds"] = seconds
    t0 = time.perf_counter()
    curve = fit_curve(a, b, data, "cross_entropy", epochs=curve_epochs, lr=curve_lr,
                      progress=False)  # fmt: skip
    row["bezier_seconds"] = time.perf_counter() - t0
    bent = curve.evaluate(data, "cross_entropy", n_points=n)
    row["bezier"] = bent.barrier
    row["bezier_max_over_ends"] = float(bent.loss.max() / max(bent.endpoint_losses))
    # the same on held-out data: the straight path's barrier and the curve's
    line_test = interpolate(a, b, test, "cross_entropy", n_points=n)
    bent_test = curve.evaluate(test, "cross_entropy", n_points=n)
    row["test_naive"] = line_test.barrier
    row["test_bezier"] = bent_test.barrier
    row["test_bezier_max_over_ends"] = float(bent_test.loss.max() / max(bent_test.endpoint_losses))
    return row


def _cell(row: dict[str, Any], key: str) -> str:
    v = row[key]
    if isinstance(v, str):
        return v[:60]
    return f"{v:.4f} ({v / row['naive']:.1%}, {row[key + '_seconds']:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two sizes only")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of each MLP")
    parser.add_argument("--curve-epochs", type=int, default=60, help="Bezier training epochs")
    parser.add_argument("--curve-lr", type=float, default=0.4, help="Bezier learning rate")
    parser.add_argument("--rebasin-path", help="folder the rebasin package is installed in")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.rebasin_path:
        sys.path.insert(0, args.rebasin_path)
    data, test = digits("train"), digits("test")
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    rows = []
    print("| hidden | ends | naive | weights (ratio, s) | activations (ratio, s) | "
          "rebasin (ratio, s) | Bezier (ratio, max/end, s) | test: naive, Bezier (ratio, max/end) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for hidden in QUICK if args.quick else SIZES:
        r = run_size(hidden, data, test, args.epochs, args.curve_epochs, args.curve_lr)
        rows.append(r)
        nv = r["naive"]
        bez = (f"{r['bezier']:.4f} ({r['bezier'] / nv:.1%}, {r['bezier_max_over_ends']:.2f}x, "
               f"{r['bezier_seconds']:.1f} s)")  # fmt: skip
        print(f"| {'-'.join(map(str, hidden))} | {r['end_losses'][0]:.3f}/{r['end_losses'][1]:.3f} "
              f"| {nv:.4f} | {_cell(r, 'weights')} | {_cell(r, 'activations')} | {_cell(r, 'rebasin')} | "
              f"{bez} | {r['test_naive']:.4f}, {r['test_bezier']:.4f} "
              f"({r['test_bezier'] / r['test_naive']:.1%}, {r['test_bezier_max_over_ends']:.2f}x) |",
              flush=True)  # fmt: skip
    ok_w = all(r["weights"] <= 0.15 * r["naive"] for r in rows)
    ok_b = all(r["bezier"] <= 0.10 * r["naive"] and r["bezier_max_over_ends"] <= 2.0 for r in rows)
    print(f"\nacceptance: weight matching <= 15% of naive: {ok_w}; Bezier <= 10% and <= 2x: {ok_b}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
