"""Landscape evaluation speed: losstopo against the floor and the loops it replaces.

Run: ``python benchmarks/bench_evaluate.py [--repeats 5] [--quick]`` (needs the bench extra
``pip install loss-landscapes`` for that column; it is skipped when absent).

Workloads (seeded, built outside the timed regions, threads pinned):
  1. MLP 64-128-128-10 on all 1797 digits, 41x41 grid;
  2. small CNN with BatchNorm on digits (8x8 images), 21x21 grid.

Columns, each a median of ``--repeats`` runs, as ratios to the *floor* = number of points x one
forward pass over the evaluation set at its best batch size (measured in a steady loop):
  losstopo        ``losstopo.evaluate`` (sequential, eval-mode BatchNorm)
  losstopo_vmap8  ``losstopo.evaluate(mode="vmap")``, 8 points per call (meant for GPUs)
  li_loop         Li et al.'s per-point loop: weights set per point, DataLoader pass at batch 128
  li_loop_w2      the same with the DataLoader's two worker processes (their default)
  landscaper      per point: clone all parameters, add the scaled direction once per unit step
  inplace         a plain loop writing ``center + a d1 + b d2`` into the parameters in place
  loss_landscapes ``loss_landscapes.random_plane`` (3.0.6)
Slow loops are timed on a subset of points and reported per point (the ratio is per point too).
Every loop that evaluates at the same coordinates is checked against losstopo's values.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import numpy as np
import torch
from machine import cpu_name
from torch.utils.data import DataLoader, TensorDataset

from losstopo import Grid, ParameterSpace, PlaneProjector, evaluate, random_directions
from losstopo.datasets import digits
from losstopo.models import MLP, SmallCNN


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, first pass after a batch-size change)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def floor_per_point(model, x, repeats: int) -> tuple[float, int]:
    best, best_bs = float("inf"), len(x)
    net = copy.deepcopy(model).eval()
    for bs in sorted({len(x), 1024, 512, 256, 128}):
        if bs > len(x):
            continue

        def once(bs=bs):
            with torch.inference_mode():
                for i in range(0, len(x), bs):
                    net(x[i : i + bs])

        t = median_time(lambda: [once() for _ in range(5)], repeats) / 5
        if t < best:
            best, best_bs = t, bs
    return best, best_bs


def set_params(net, names, vec, space):
    parts = space.unflatten(vec)
    with torch.no_grad():
        for n in names:
            net.get_parameter(n).copy_(parts[n])


def li_loop(model, x, y, center, d1, d2, coords, workers: int):
    """Li et al.'s plot_surface loop: per point set weights, evaluate through a DataLoader at 128."""
    net = copy.deepcopy(model).eval()
    space = ParameterSpace.from_module(net)
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=128,
        shuffle=False,
        num_workers=workers,
        persistent_workers=False,
    )
    crit = torch.nn.CrossEntropyLoss()
    out = []
    for a, b in coords:
        set_params(net, space.names, center + a * d1 + b * d2, space)
        total, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for xb, yb in loader:
                o = net(xb)
                total += crit(o, yb).item() * len(xb)
                correct += (o.argmax(1) == yb).sum().item()
                n += len(xb)
        out.append(total / n)
    return np.array(out)


def landscaper_loop(model, x, y, center, d1, d2, coords, step: float):
    """Landscaper's loop: per point clone all parameters, then add the scaled direction once per
    unit step from the centre (i steps of ``step * d1``, j steps of ``step * d2``)."""
    net = copy.deepcopy(model).eval()
    space = ParameterSpace.from_module(net)
    out = []
    for a, b in coords:
        params = center.clone()
        for _ in range(int(round(abs(a) / step))):
            params.add_(d1, alpha=step * np.sign(a))
        for _ in range(int(round(abs(b) / step))):
            params.add_(d2, alpha=step * np.sign(b))
        set_params(net, space.names, params, space)
        with torch.no_grad():
            out.append(float(torch.nn.functional.cross_entropy(net(x), y)))
    return np.array(out)


def inplace_loop(model, x, y, center, d1, d2, coords):
    net = copy.deepcopy(model).eval()
    space = ParameterSpace.from_module(net)
    params = [net.get_parameter(n) for n in space.names]
    c, e1, e2 = (space.unflatten(v) for v in (center, d1, d2))
    out = []
    with torch.inference_mode():
        for a, b in coords:
            for n, p in zip(space.names, params, strict=True):
                torch.add(c[n], e1[n], alpha=float(a), out=p.data)
                p.data.add_(e2[n], alpha=float(b))
            out.append(float(torch.nn.functional.cross_entropy(net(x), y)))
    return np.array(out)


def loss_landscapes_plane(model, x, y, steps: int):
    import loss_landscapes
    import loss_landscapes.metrics

    metric = loss_landscapes.metrics.Loss(torch.nn.CrossEntropyLoss(), x, y)
    with torch.no_grad():
        return loss_landscapes.random_plane(
            copy.deepcopy(model),
            metric,
            distance=1,
            steps=steps,
            normalization="filter",
            deepcopy_model=True,
        )


def loss_landscapes_row_offset(model, x, y) -> float:
    """Step offset along the second direction between odd and even rows of random_plane."""
    import loss_landscapes

    recorded = []

    class Record(loss_landscapes.metrics.Metric):
        def __call__(self, wrapper):
            recorded.append(
                torch.cat([p.detach().reshape(-1).clone() for p in wrapper.get_module_parameters()])
            )
            return 0.0

    steps = 4
    loss_landscapes.random_plane(copy.deepcopy(model), Record(), steps=steps, deepcopy_model=True)
    # The library builds even rows forwards and odd rows backwards: rebuild the evaluation order.
    grid = [[None] * steps for _ in range(steps)]
    k = 0
    for i in range(steps):
        order = range(steps) if i % 2 == 0 else range(steps - 1, -1, -1)
        for j in order:
            grid[i][j] = recorded[k]
            k += 1
    d2 = grid[0][1] - grid[0][0]
    d1_even = (grid[2][0] - grid[0][0]) / 2
    drift = grid[1][0] - grid[0][0] - d1_even  # zero on an aligned grid
    return float((drift @ d2) / (d2 @ d2))


def workload(name: str, quick: bool):
    torch.manual_seed(0)
    if name == "mlp":
        x, y = digits("all")
        model = MLP(64, (128, 128), 10)
        res = 41
    else:
        x, y = digits("all", images=True)
        model = SmallCNN(1, 10, width=16)
        res = 21
    if quick:
        res = 11
    # a trained-ish model: a few epochs so the landscape has a minimum
    from losstopo import train

    train(model, (x, y), epochs=3, seed=0, progress=False, lr=0.05)
    model.eval()
    return model, x, y, res


def run(name: str, repeats: int, quick: bool) -> dict:
    model, x, y, res = workload(name, quick)
    dirs = random_directions(model, n_components=2, normalization="filter", ignore="biasbn", seed=0)
    proj = PlaneProjector(model, dirs)
    grid = Grid.square(res, extent=1.0)
    coords = grid.points()
    n_points = len(coords)
    center = ParameterSpace.from_module(model).flatten(model).detach().clone()
    d1, d2 = dirs[0], dirs[1]
    floor_pp, floor_bs = floor_per_point(model, x, repeats)
    net = copy.deepcopy(model).eval()

    def floor_pass() -> None:
        with torch.inference_mode():
            for i in range(0, len(x), floor_bs):
                net(x[i : i + floor_bs])

    field = evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False)
    ref = field.values.ravel()
    sub = np.linspace(0, n_points - 1, min(n_points, 41 if not quick else 11)).astype(int)
    sub_w = sub[:: max(1, len(sub) // 11)]
    step = float(grid.axes["x"][1] - grid.axes["x"][0])

    def check(values: np.ndarray, idx: np.ndarray) -> str:
        err = float(np.max(np.abs(values - ref[idx]) / np.abs(ref[idx])))
        return f"max rel. diff {err:.1e} vs losstopo"

    notes = {
        "floor": f"batch {floor_bs}",
        "losstopo": f"{field.attrs['engine']}, batch {field.attrs['batch_size']}",
        "losstopo_vmap8": check(
            evaluate(
                model, (x, y), "cross_entropy", proj, grid, mode="vmap", progress=False
            ).values.ravel(),
            np.arange(n_points),
        ),
        "li_loop": check(li_loop(model, x, y, center, d1, d2, coords[sub], 0), sub),
        "li_loop_w2": "2 DataLoader workers",
        "landscaper": check(landscaper_loop(model, x, y, center, d1, d2, coords[sub], step), sub)
        + " (walked)",
        "inplace": check(inplace_loop(model, x, y, center, d1, d2, coords), np.arange(n_points)),
    }
    # (function, number of points it evaluates): all timed round-robin in one loop, so that
    # machine noise hits every column alike.
    methods = {
        "floor": (lambda: [floor_pass() for _ in range(n_points)], n_points),
        "losstopo": (
            lambda: evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False),
            n_points,
        ),
        "losstopo_vmap8": (
            lambda: evaluate(
                model, (x, y), "cross_entropy", proj, grid, mode="vmap", progress=False
            ),
            n_points,
        ),
        "li_loop": (lambda: li_loop(model, x, y, center, d1, d2, coords[sub], 0), len(sub)),
        "li_loop_w2": (lambda: li_loop(model, x, y, center, d1, d2, coords[sub_w], 2), len(sub_w)),
        "landscaper": (
            lambda: landscaper_loop(model, x, y, center, d1, d2, coords[sub], step),
            len(sub),
        ),
        "inplace": (lambda: inplace_loop(model, x, y, center, d1, d2, coords), n_points),
    }
    try:
        import loss_landscapes  # noqa: F401

        methods["loss_landscapes"] = (lambda: loss_landscapes_plane(model, x, y, res), n_points)
        offset = loss_landscapes_row_offset(model, x, y)
        notes["loss_landscapes"] = f"odd rows {offset:+.2f} step along d2 vs even rows"
    except ImportError:
        notes["loss_landscapes"] = "not installed (pip install loss-landscapes)"
    times: dict[str, list[float]] = {k: [] for k in methods}
    for fn, _ in methods.values():
        fn()  # warm-up
    for r in range(repeats):
        keys = list(methods)
        keys = keys[r % len(keys) :] + keys[: r % len(keys)]  # rotate the order
        for k in keys:
            fn, _ = methods[k]
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    rows = {k: (statistics.median(times[k]) / methods[k][1], notes[k]) for k in methods}
    if "loss_landscapes" not in rows:
        rows["loss_landscapes"] = (float("nan"), notes["loss_landscapes"])
    del floor_pp
    return {
        "name": name,
        "n_points": n_points,
        "n_params": center.numel(),
        "n_samples": len(x),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small grids (a smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads, medians of {args.repeats}"
    )
    for name in ("mlp", "cnn"):
        r = run(name, args.repeats, args.quick)
        floor = r["rows"]["floor"][0]
        print(
            f"\n{name}: {r['n_points']} points, {r['n_params']} parameters, {r['n_samples']} samples"
        )
        print(f"  {'method':<16}{'ms/point':>10}{'x floor':>10}  note")
        for key, (pp, note) in r["rows"].items():
            print(f"  {key:<16}{pp * 1e3:>10.3f}{pp / floor:>10.2f}  {note}")


if __name__ == "__main__":
    main()
