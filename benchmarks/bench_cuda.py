"""Landscape evaluation on a CUDA GPU: losstopo's sequential and vmap modes against the floor.

Run where a CUDA GPU is: ``python benchmarks/bench_cuda.py [--repeats 3] [--workloads ...]``
(``--device cpu --quick`` is a smoke run of the script itself on any machine).

The models are built and trained by a plain script (``plain_models.py``), as in
``bench_evaluate.py``, and losstopo gets the user's loss, ``torch.nn.functional.cross_entropy``:

  mlp                     MLP 64-128-128-10 on all 1797 digits, 41x41 grid
  resnet20-digits         ResNet-20 (eval-mode BatchNorm) on all 1797 8x8 digit images, 21x21
  resnet20-noskip-digits  the same without shortcuts
  resnet20-cifar          ResNet-20 on 1024 32x32 CIFAR-format synthetic images, 21x21
  resnet20-noskip-cifar   the same without shortcuts

Columns, ms per point (median of ``--repeats`` runs timed round-robin), and their ratio to
floor_loss measured in the same loop:
  floor_loss   forward + cross-entropy over the data at its best batch size, per point
  inplace      the plain loop: ``center + a d1 + b d2`` written into the parameters in place,
               one forward pass and F.cross_entropy on all the data
  sequential   ``losstopo.evaluate(..., device=DEV, mode="sequential", metrics=())``
  vmap8        ``mode="vmap"`` with 8 points per call (what ``mode="auto"`` runs on a GPU)
  vmap32       ``mode="vmap", vmap_size=32``
Correctness: every column's values against losstopo on the CPU at 11 of the points (the
relative difference; cuDNN runs float32 convolutions in TF32 unless told otherwise, and the
report says which setting was in force).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import plain_models
import torch
import torch.nn.functional as F
from bench_evaluate import best_batch, inplace_loop, plane, timed_round_robin
from machine import cpu_name

from losstopo import evaluate, evaluate_points

WORKLOADS = (
    "mlp",
    "resnet20-digits",
    "resnet20-noskip-digits",
    "resnet20-cifar",
    "resnet20-noskip-cifar",
)


def workload(name: str, args, device: torch.device):
    model, x, y, res, steps = plain_models.workload(name, None, args.cifar)  # all 1797 digits
    if args.quick:
        res, steps, x, y = 5, 3, x[:64], y[:64]
    model = plain_models.train(model.to(device), x.to(device), y.to(device), steps)
    return model.cpu(), x, y, res


def loss_floor(model, x, y):
    """One forward + loss pass over the data at its best batch size (synchronised by float())."""

    def with_loss(bs):
        total = 0.0
        with torch.inference_mode():
            for i in range(0, len(x), bs):
                total += float(F.cross_entropy(model(x[i : i + bs]), y[i : i + bs])) * len(
                    x[i : i + bs]
                )
        return total / len(x)

    bs = best_batch(with_loss, len(x))
    return (lambda: with_loss(bs)), bs


def run(name: str, args, device: torch.device) -> dict:
    model, x, y, res = workload(name, args, device)
    proj, grid, coords, center, d1, d2 = plane(model, res)
    n = len(coords)
    sub = np.linspace(0, n - 1, min(n, 11)).astype(int)
    points = torch.stack([center + float(a) * d1 + float(b) * d2 for a, b in coords[sub]])
    reference = evaluate_points(model, (x, y), F.cross_entropy, points, device="cpu").loss

    xd, yd = x.to(device), y.to(device)
    net = model.to(device).eval()
    floor_fn, floor_bs = loss_floor(net, xd, yd)

    def losstopo(mode: str, k: int = 8):
        def fn():
            return evaluate(
                model,
                (x, y),
                F.cross_entropy,
                proj,
                grid,
                metrics=(),
                progress=False,
                device=device,
                mode=mode,
                vmap_size=k,
            )

        return fn

    methods = {
        "floor_loss": (lambda: [floor_fn() for _ in range(n)], n),
        "inplace": (
            lambda: inplace_loop(
                net, xd, yd, center.to(device), d1.to(device), d2.to(device), coords
            ),
            n,
        ),
        "sequential": (losstopo("sequential"), n),
        "vmap8": (losstopo("vmap", 8), n),
        "vmap32": (losstopo("vmap", 32), n),
    }
    notes = {"floor_loss": f"batch {floor_bs}"}
    for key, (fn, _) in methods.items():
        if key == "floor_loss":
            continue
        out = fn()
        values = out if isinstance(out, np.ndarray) else out.values.ravel()
        err = float(np.max(np.abs(values[sub] - reference) / np.abs(reference)))
        notes[key] = f"max rel. diff {err:.1e} vs CPU"
        if key == "sequential":
            notes[key] += f", {out.attrs['engine']}, batch {out.attrs['batch_size']}"
    times = timed_round_robin(methods, args.repeats, warmup=False)  # the checks warmed up
    rows = {k: (statistics.median(v), min(v), notes[k]) for k, v in times.items()}
    return {"name": name, "n_points": n, "n_samples": len(x), "rows": rows}


def report(r: dict, device_name: str) -> None:
    floor = r["rows"]["floor_loss"][0]
    print(f"\n{r['name']}: {r['n_points']} points, {r['n_samples']} samples, on {device_name}")
    print(f"  {'column':<12} {'ms/point':>9} {'x floor':>8}  notes")
    for k, (med, _, note) in r["rows"].items():
        print(f"  {k:<12} {1e3 * med:9.3f} {med / floor:8.2f}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny grids and data (a smoke run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--cifar", type=int, default=1024, help="CIFAR-format images")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    parser.add_argument("--no-tf32", action="store_true", help="cuDNN convolutions in float32")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_cuda.py needs a CUDA GPU; --device cpu --quick runs it on the CPU.")
    if args.no_tf32:
        torch.backends.cudnn.allow_tf32 = False
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tf32 = (
            f"TF32 matmul {torch.backends.cuda.matmul.allow_tf32}, "
            f"cuDNN TF32 {torch.backends.cudnn.allow_tf32}"
        )
    else:
        name, tf32 = cpu_name(), "CPU"
    print(f"device: {name}; torch {torch.__version__}; {tf32}; host CPU: {cpu_name()}")
    results = []
    for w in args.workloads.split(","):
        t0 = time.perf_counter()
        r = run(w, args, device)
        report(r, name)
        print(f"  ({time.perf_counter() - t0:.0f} s)")
        results.append(r)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"device": name, "torch": torch.__version__, "tf32": tf32, "results": results},
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
