"""Benchmark: losstopo's merge tree + critical points vs gudhi's cubical persistence.

Run with ``python benchmarks/bench_topology.py`` (threads pinned to 1 for numpy/BLAS). Data is
made outside the timed region; numba kernels are compiled (and cached) before timing. Each time
is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import gudhi  # noqa: E402
import numpy as np  # noqa: E402
from machine import cpu_name  # noqa: E402

from losstopo.topology import critical_points, merge_tree  # noqa: E402


def smooth_field(shape: tuple[int, ...], seed: int = 0, bumps: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    f = np.zeros(shape)
    for _ in range(bumps):
        c = rng.random(len(shape))
        w = rng.uniform(0.05, 0.3)
        r2 = sum((g - ci) ** 2 for g, ci in zip(grids, c, strict=True))
        f += rng.uniform(-1, 1) * np.exp(-r2 / (2 * w * w))
    return f


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ours(f: np.ndarray, connectivity: str) -> None:
    t = merge_tree(f, connectivity=connectivity)
    _ = t.segmentation
    critical_points(f, connectivity=connectivity)


def gudhi_cubical(f: np.ndarray) -> None:
    gudhi.CubicalComplex(vertices=f).persistence()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller fields (smoke test)")
    args = ap.parse_args()
    r = args.repeats
    print(f"CPU: {cpu_name()}; {os.cpu_count()} cores visible; threads pinned to 1")
    print(f"numpy {np.__version__}, gudhi {gudhi.__version__}; median of {r} runs\n")
    # warm the numba kernels (compile or load the cache) outside the timed region
    for conn in ("freudenthal", "cubical"):
        ours(smooth_field((6, 6)), conn)
        ours(smooth_field((4, 4, 4)), conn)

    big2, big3 = (1024, 1024), (128, 128, 128)
    if args.quick:
        big2, big3 = (256, 256), (48, 48, 48)
    print("Head to head (ours = merge tree with segmentation + critical points with Hessians)")
    print(
        f"{'field':>14} {'gudhi cubical':>14} {'ours cubical':>13} {'ours freud.':>12} "
        f"{'ratio cub.':>11} {'ratio freud.':>13}"
    )
    for shape in (big2, big3):
        f = smooth_field(shape)
        tg = median_time(lambda f=f: gudhi_cubical(f), r)
        tc = median_time(lambda f=f: ours(f, "cubical"), r)
        tf = median_time(lambda f=f: ours(f, "freudenthal"), r)
        name = "x".join(map(str, shape))
        print(
            f"{name:>14} {tg:>13.3f}s {tc:>12.3f}s {tf:>11.3f}s {tc / tg:>11.2f} {tf / tg:>13.2f}"
        )

    print("\nScaling (ours, freudenthal; time per vertex should stay flat: O(n log n) sort)")
    print(f"{'field':>14} {'vertices':>10} {'time':>9} {'ns/vertex':>10}")
    sizes2 = [128, 256, 512, 1024] if not args.quick else [64, 128, 256]
    sizes3 = [32, 64, 96, 128] if not args.quick else [16, 32, 48]
    for shape in [(s, s) for s in sizes2] + [(s, s, s) for s in sizes3]:
        f = smooth_field(shape)
        t = median_time(lambda f=f: ours(f, "freudenthal"), r)
        n = f.size
        print(f"{'x'.join(map(str, shape)):>14} {n:>10} {t:>8.3f}s {1e9 * t / n:>10.1f}")


if __name__ == "__main__":
    main()
