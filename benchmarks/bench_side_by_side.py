"""Copies of the model side by side against torch's threads on one copy, whole `evaluate` calls.

For each workload, `losstopo.evaluate` runs in rotation (medians of ``--repeats``):

- ``threads``: one copy, the process's torch threads (side by side turned off:
  ``losstopo.engine.runs.MAX_COPIES = 1``);
- ``copies<=k``: at most ``k`` copies side by side, each with ``threads // copies`` threads,
  for every ``k`` of ``--copies``. ``--always`` lifts the 10 ms rule
  (``losstopo.engine.tuning.SIDE_BY_SIDE_BELOW``) so slow points run side by side too.

``--busy`` runs everything beside a second process that keeps every core busy.

    python benchmarks/bench_side_by_side.py --workloads mlp,cnn,resnet20-digits --always
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from bench_evaluate import BUSY_CODE, plane
from machine import cpu_name
from plain_models import train, workload

import losstopo.engine.runs as runs
import losstopo.engine.tuning as tuning
from losstopo import evaluate


def run(name: str, args) -> None:
    model, x, y, res, steps = workload(name, digit_images=args.digits or None)
    train(model, x, y, steps)
    res = 8 if args.quick else res
    proj, grid, *_ = plane(model, res)
    configs = {"threads": 1, **{f"copies<={k}": k for k in args.copies}}
    times: dict[str, list[float]] = {c: [] for c in configs}
    values, strategies = {}, {}
    for _ in range(args.repeats):
        for label, k in configs.items():
            runs.MAX_COPIES = k
            t0 = time.perf_counter()
            field = evaluate(
                model, (x, y), F.cross_entropy, proj, grid, metrics=(), progress=False,
                device="cpu",
            )  # fmt: skip
            times[label].append((time.perf_counter() - t0) / grid.size * 1e3)
            values[label], strategies[label] = field.values, field.attrs["strategy"]
    base = statistics.median(times["threads"])
    print(f"\n{name}: {grid.size} points, {len(x)} samples")
    print(f"  {'config':11s} {'ms/point':>9s} {'x threads':>10s}  strategy, max rel. diff")
    for label in configs:
        med = statistics.median(times[label])
        diff = float(np.max(np.abs(values[label] - values["threads"]) / np.abs(values["threads"])))
        s = {k: v for k, v in strategies[label].items() if k in ("threads", "side_by_side")}
        print(f"  {label:11s} {med:9.3f} {med / base:10.2f}  {s or 'one copy'}, {diff:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="mlp,cnn,resnet20-digits")
    parser.add_argument("--copies", default="2,4", help="largest numbers of copies to try")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--digits", type=int, default=0, help="digit images for ResNets (0: all)")
    parser.add_argument("--always", action="store_true", help="side by side for slow points too")
    parser.add_argument("--busy", action="store_true", help="beside a process using every core")
    parser.add_argument("--quick", action="store_true", help="8x8 grids (a smoke run)")
    args = parser.parse_args()
    args.copies = [int(k) for k in args.copies.split(",")]
    if args.always:
        tuning.SIDE_BY_SIDE_BELOW = float("inf")
    print(
        f"machine: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"medians of {args.repeats}{', busy' if args.busy else ''}"
        f"{', side by side for every point' if args.always else ''}"
    )
    busy = subprocess.Popen([sys.executable, "-c", BUSY_CODE]) if args.busy else None
    try:
        for name in args.workloads.split(","):
            run(name, args)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


if __name__ == "__main__":
    main()
