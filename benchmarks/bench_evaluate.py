"""Landscape evaluation speed: losstopo against the floor and the loops it replaces.

Run: ``python benchmarks/bench_evaluate.py [--repeats 3] [--workloads mlp,cnn,...] [--busy ...]``
(needs the bench extra ``pip install loss-landscapes`` for that column; skipped when absent).

Every model is built and trained by a plain script (``plain_models.py``: torch only, none of the
package's helpers), and losstopo gets the user's loss, ``torch.nn.functional.cross_entropy``:

  mlp                     MLP 64-128-128-10 on all 1797 digits, 41x41 grid
  cnn                     small CNN with BatchNorm on the 8x8 digit images, 21x21 grid
  resnet20-digits         ResNet-20 (eval-mode BatchNorm) on 8x8 digit images, 21x21 grid
  resnet20-noskip-digits  the same without shortcuts (Li et al.'s ResNet-20-noshort)
  resnet20-cifar          ResNet-20 on 32x32 CIFAR-format synthetic data, 21x21 grid
  resnet20-noskip-cifar   the same without shortcuts

Columns, ms per point (median of ``--repeats`` runs timed round-robin in one loop, so machine
noise hits every column alike), as ratios to two floors measured in the same loop:
  floor           number of points x one forward pass over the data at its best batch size
  floor_loss      the same with the loss: forward + cross-entropy at its best batch size
  losstopo        ``losstopo.evaluate(model, data, F.cross_entropy, ..., metrics=())``
  losstopo_acc    ``losstopo.evaluate(model, data, "cross_entropy", ...)``: loss and accuracy
  losstopo_vmap8  ``losstopo.evaluate(..., mode="vmap")``, 8 points per call (meant for GPUs)
  li_loop         Li et al.'s per-point loop: weights set per point, DataLoader pass at batch 128
  li_loop_w2      the same with the DataLoader's two worker processes (their default)
  landscaper      per point: clone all parameters, add the scaled direction once per unit step
  inplace         the plain loop: ``center + a d1 + b d2`` written into the parameters in place,
                  one forward pass and F.cross_entropy on all the data
  loss_landscapes ``loss_landscapes.random_plane`` (3.0.6)
Busy machine (``--busy``): floor_loss, losstopo, inplace and loss_landscapes again, round-robin,
while a second process keeps both cores busy (two threads of matrix products).
Slow loops are timed on a subset of points and reported per point (the ratio is per point too).
Every loop that evaluates at the same coordinates is checked against losstopo's values.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import statistics
import subprocess
import sys
import time

import numpy as np
import plain_models
import torch
import torch.nn.functional as F
from machine import cpu_name
from torch.utils.data import DataLoader, TensorDataset

from losstopo import Grid, ParameterSpace, PlaneProjector, evaluate, random_directions

LIGHT = ("mlp", "cnn")
WORKLOADS = (
    "mlp",
    "cnn",
    "resnet20-digits",
    "resnet20-noskip-digits",
    "resnet20-cifar",
    "resnet20-noskip-cifar",
)
BUSY_CODE = """
import torch
torch.set_num_threads(2)
a = torch.randn(384, 384)
while True:
    a = torch.tanh(a @ a)
"""


def best_batch(pass_fn, n: int, repeats: int = 3) -> int:
    """The batch size at which ``pass_fn(bs)`` (one pass over the data) is fastest."""
    best, best_bs = float("inf"), n
    for bs in sorted({n, 1024, 512, 256, 128}, reverse=True):
        if bs > n:
            continue
        pass_fn(bs)  # warm-up
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            pass_fn(bs)
            t.append(time.perf_counter() - t0)
        if min(t) < best * 0.98:
            best, best_bs = min(t), bs
    return best_bs


def floors(model, x, y):
    """Forward-only and forward+loss passes over the data, each at its best batch size."""
    net = copy.deepcopy(model).eval()

    def forward(bs):
        with torch.inference_mode():
            for i in range(0, len(x), bs):
                net(x[i : i + bs])

    def with_loss(bs):
        total = 0.0
        with torch.inference_mode():
            for i in range(0, len(x), bs):
                xb, yb = x[i : i + bs], y[i : i + bs]
                total += float(F.cross_entropy(net(xb), yb)) * len(xb)
        return total / len(x)

    bs_f, bs_l = best_batch(forward, len(x)), best_batch(with_loss, len(x))
    return (lambda: forward(bs_f)), bs_f, (lambda: with_loss(bs_l)), bs_l


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
            out.append(float(F.cross_entropy(net(x), y)))
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


def workload(name: str, args):
    model, x, y, res, steps = plain_models.workload(name, args.resnet_digits, args.resnet_cifar)
    if args.quick:
        res, steps = 7, 5
    elif name in LIGHT and args.light_res:
        res = args.light_res
    elif name not in LIGHT and args.resnet_res:
        res = args.resnet_res
    model = plain_models.train(model, x, y, steps)  # a trained-ish model, in eval mode
    return model, x, y, res


def timed_round_robin(methods: dict, repeats: int, warmup: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in methods}
    if warmup:
        for fn, _ in methods.values():
            fn()
    for r in range(repeats):
        keys = list(methods)
        keys = keys[r % len(keys) :] + keys[: r % len(keys)]  # rotate the order
        for k in keys:
            fn, n = methods[k]
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) / n)
    return times


def plane(model, res: int):
    """The benchmarks' landscape: a filter-normalized random plane (seed 0, no bias/BatchNorm
    directions) on a ``res`` x ``res`` grid over [-1, 1]^2: projector, grid, its points, and the
    centre and two directions as flat tensors."""
    dirs = random_directions(model, n_components=2, normalization="filter", ignore="biasbn", seed=0)
    grid = Grid.square(res, extent=1.0)
    center = ParameterSpace.from_module(model).flatten(model).detach().clone()
    return PlaneProjector(model, dirs), grid, grid.points(), center, dirs[0], dirs[1]


def run(name: str, args) -> dict:
    model, x, y, res = workload(name, args)
    proj, grid, coords, center, d1, d2 = plane(model, res)
    n_points = len(coords)
    floor_pass, floor_bs, loss_pass, loss_bs = floors(model, x, y)

    def losstopo(**kw):
        return evaluate(
            model, (x, y), F.cross_entropy, proj, grid, metrics=(), progress=False, **kw
        )

    field = losstopo()
    ref = field.values.ravel()
    sub = np.linspace(0, n_points - 1, min(n_points, 41 if not args.quick else 11)).astype(int)
    sub_w = sub[:: max(1, len(sub) // 11)]
    step = float(grid.axes["x"][1] - grid.axes["x"][0])

    def check(values: np.ndarray, idx: np.ndarray) -> str:
        err = float(np.max(np.abs(values - ref[idx]) / np.abs(ref[idx])))
        return f"max rel. diff {err:.1e} vs losstopo"

    fast = field.attrs["fast_paths"]
    notes = {
        "floor": f"batch {floor_bs}",
        "floor_loss": f"batch {loss_bs}",
        "losstopo": f"{field.attrs['engine']}, batch {field.attrs['batch_size']}, {fast['path']}"
        + f", {field.attrs['strategy'].get('threads', torch.get_num_threads())} thread(s)",
        "inplace": check(inplace_loop(model, x, y, center, d1, d2, coords), np.arange(n_points)),
    }
    methods = {
        "floor": (lambda: [floor_pass() for _ in range(n_points)], n_points),
        "floor_loss": (lambda: [loss_pass() for _ in range(n_points)], n_points),
        "losstopo": (losstopo, n_points),
    }
    if name in LIGHT and not args.core_only:
        acc = evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False)
        notes["losstopo_acc"] = check(acc.values.ravel(), np.arange(n_points)) + ", + accuracy"
        vm = losstopo(mode="vmap").values.ravel()
        notes["losstopo_vmap8"] = check(vm, np.arange(n_points))
        notes["li_loop"] = check(li_loop(model, x, y, center, d1, d2, coords[sub], 0), sub)
        notes["li_loop_w2"] = "2 DataLoader workers"
        walked = landscaper_loop(model, x, y, center, d1, d2, coords[sub], step)
        notes["landscaper"] = check(walked, sub) + " (walked)"
        methods.update(
            {
                "losstopo_acc": (
                    lambda: evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False),
                    n_points,
                ),
                "losstopo_vmap8": (lambda: losstopo(mode="vmap"), n_points),
                "li_loop": (
                    lambda: li_loop(model, x, y, center, d1, d2, coords[sub], 0),
                    len(sub),
                ),
                "li_loop_w2": (
                    lambda: li_loop(model, x, y, center, d1, d2, coords[sub_w], 2),
                    len(sub_w),
                ),
                "landscaper": (
                    lambda: landscaper_loop(model, x, y, center, d1, d2, coords[sub], step),
                    len(sub),
                ),
            }
        )
    methods["inplace"] = (lambda: inplace_loop(model, x, y, center, d1, d2, coords), n_points)
    try:
        import loss_landscapes  # noqa: F401

        methods["loss_landscapes"] = (lambda: loss_landscapes_plane(model, x, y, res), n_points)
        offset = loss_landscapes_row_offset(model, x, y)
        notes["loss_landscapes"] = f"odd rows {offset:+.2f} step along d2 vs even rows"
    except ImportError:
        notes["loss_landscapes"] = "not installed (pip install loss-landscapes)"
    times = timed_round_robin(methods, args.repeats, warmup=name in LIGHT)
    rows = {k: (statistics.median(v), min(v), notes[k]) for k, v in times.items()}
    busy = None
    if name in args.busy:
        keys = [k for k in ("floor_loss", "losstopo", "inplace", "loss_landscapes") if k in methods]
        proc = subprocess.Popen([sys.executable, "-c", BUSY_CODE])
        try:
            time.sleep(1.0)
            bt = timed_round_robin({k: methods[k] for k in keys}, args.repeats, warmup=False)
        finally:
            proc.kill()
            proc.wait()
        busy = {k: (statistics.median(v), min(v)) for k, v in bt.items()}
    return {
        "name": name,
        "n_points": n_points,
        "n_params": center.numel(),
        "n_samples": len(x),
        "rows": rows,
        "busy": busy,
        "fast_paths": fast["detail"],
    }


def report(r: dict) -> None:
    floor, floor_loss = r["rows"]["floor"][0], r["rows"]["floor_loss"][0]
    print(
        f"\n{r['name']}: {r['n_points']} points, {r['n_params']} parameters, "
        f"{r['n_samples']} samples\n  fast paths: {r['fast_paths']}"
    )
    print(f"  {'method':<16}{'ms/point':>10}{'x floor':>9}{'x f+loss':>10}  note")
    for key, (med, _, note) in r["rows"].items():
        print(f"  {key:<16}{med * 1e3:>10.3f}{med / floor:>9.2f}{med / floor_loss:>10.2f}  {note}")
    rows = r["rows"]
    if "loss_landscapes" in rows:
        ll = rows["loss_landscapes"][0] / rows["losstopo"][0]
        print(f"  losstopo is {ll:.2f}x faster than loss_landscapes", end="")
    print(f", {rows['inplace'][0] / rows['losstopo'][0]:.2f}x faster than the in-place loop")
    if r["busy"]:
        b = r["busy"]
        print("  busy machine (a second process on both cores), medians:")
        print(f"  {'method':<16}{'ms/point':>10}{'x f+loss':>10}{'x inplace':>11}")
        for key, (med, _) in b.items():
            print(
                f"  {key:<16}{med * 1e3:>10.3f}{med / b['floor_loss'][0]:>10.2f}"
                f"{med / b['inplace'][0]:>11.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small grids (a smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--busy", default="mlp,resnet20-digits", help="workloads also run busy")
    parser.add_argument("--core-only", action="store_true", help="no li/landscaper/vmap columns")
    parser.add_argument("--resnet-digits", type=int, default=128, help="digit images for ResNets")
    parser.add_argument("--resnet-cifar", type=int, default=32, help="CIFAR-format images")
    parser.add_argument("--light-res", type=int, default=0, help="grid of mlp/cnn (0: 41/21)")
    parser.add_argument("--resnet-res", type=int, default=0, help="grid of the ResNets (0: 21)")
    args = parser.parse_args()
    # a killed run still stops its busy process (the finally clauses run on SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    args.busy = [w for w in args.busy.split(",") if w]
    torch.set_num_threads(args.threads)
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads, medians of {args.repeats}, load average "
        f"{os.getloadavg()[0]:.1f} at start"
    )
    for name in args.workloads.split(","):
        report(run(name, args))
        sys.stdout.flush()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
