"""Li et al. (2018) at small scale: do skip connections keep deep landscapes convex-looking?

Run: ``python benchmarks/reproduce_skip_connections.py [--quick] [--out docs/findings.md]``.

Li et al. ("Visualizing the Loss Landscape of Neural Nets", Fig. 5) plot the loss of CIFAR-10
ResNets on a random filter-normalised plane around the trained weights: with shortcuts the
surface stays one smooth bowl as the network gets deeper; without them (ResNet-56-noshort,
ResNet-110-noshort) it turns chaotic, with many local minima and strong negative curvature
(their Fig. 7 maps ``|lambda_min / lambda_max|``).

Here: deep residual MLPs (:class:`losstopo.models.ResidualMLP`: the CIFAR ResNet's basic block,
two BatchNorm layers and a shortcut, with linear layers of ``--width`` units) on the flattened
8x8 scikit-learn digits, with and without shortcuts, at ``--blocks`` blocks (``2 * blocks + 2``
linear layers). Every network is trained with the same SGD (lr 0.02, momentum 0.9, batches of
64, seed 0) until its training loss (BatchNorm in eval mode, all training digits) reaches the
target or the epoch limit passes (``SETTINGS``). Each landscape is the training loss on the
first ``n_eval`` training digits over the same grid (``--resolution`` squared points on
[-1, 1]^2) of the same kind of plane: two
Gaussian directions drawn with seed 1, filter-normalised, biases and BatchNorm left fixed
(``random_directions(..., "filter", "biasbn")``). For each landscape:

- persistent minima and total persistence of the join tree (``analyze``, absolute threshold
  ``min_persistence`` on the loss),
- the verified separations (``verify_topology``: straight full-space segments between the
  decoded minima, a separation is confirmed when its barrier is at least half the picture's),
  and the picture's minima that are full-space minima (no negative Lanczos curvature),
- the curvature ratio ``|lambda_min / lambda_max|`` (``hessian_map``) on a coarser grid.

The script writes the table, the figures (``docs/img/``) and a reading to ``--out``, with the
machine, the thread count and the wall time. ``--quick`` runs a tiny version (two shallow
depths, a few training digits, a 7x7 grid) in well under a minute, for the tests.

The convolutional CIFAR ResNets (``losstopo.models.CifarResNet``, which takes the digits' one
channel and a ``width``) cost far more per landscape point and per Hessian product on a CPU; the
residual MLPs keep the block design and reach depths where the finding shows within the time
of a CPU run.

The published page was made with ``--threads 1`` on a two-core machine shared with other jobs
(two OpenMP threads competing with other processes for two cores run slower than one), and
``--render-only`` rewrites the page from the numbers a run saved (``docs/img/skip_results.json``)
after its reading (``READING``) is edited.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

from losstopo import (  # noqa: E402
    Grid,
    LossField,
    PlaneProjector,
    TopologySummary,
    analyze,
    evaluate,
    hessian_map,
    random_directions,
    train,
    verify_topology,
)
from losstopo.datasets import digits  # noqa: E402
from losstopo.models import ResidualMLP  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: The settings of a full run and of ``--quick``; flags override them.
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "blocks": (1, 4, 8, 16),
        "width": 32,
        "target_loss": 0.05,
        "max_epochs": 60,
        "n_train": None,  # all training digits
        "n_eval": 512,
        "resolution": 31,
        "min_persistence": 0.01,
        "hessian_resolution": 9,
        "hessian_k": 10,
        "verify_steps": 10,
    },
    "quick": {
        "blocks": (1, 2),
        "width": 8,
        "target_loss": 0.05,
        "max_epochs": 2,
        "n_train": 128,
        "n_eval": 48,
        "resolution": 7,
        "min_persistence": 0.01,
        "hessian_resolution": 3,
        "hessian_k": 4,
        "verify_steps": 4,
    },
}


@dataclass
class Result:
    """One network's training, landscape and its analyses."""

    depth: int
    skip: bool
    n_params: int
    epochs: int
    train_loss: float
    train_accuracy: float
    field: LossField
    topology: TopologySummary
    n_separations: int
    n_confirmed: int
    n_full_space_minima: int
    ratio: LossField
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"ResMLP-{self.depth}{'' if self.skip else '-noskip'}"

    @property
    def ratio_mean(self) -> float:
        return float(np.nanmean(self.ratio.values))

    @property
    def ratio_max(self) -> float:
        return float(np.nanmax(self.ratio.values))

    def record(self) -> dict[str, Any]:
        """The numbers of the table, as JSON-ready values."""
        values = self.field.values
        return {
            "name": self.name,
            "depth": self.depth,
            "skip": self.skip,
            "n_params": self.n_params,
            "epochs": self.epochs,
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
            "centre_loss": float(values[tuple(n // 2 for n in values.shape)]),
            "n_minima": self.topology.n_minima,
            "total_persistence": float(self.topology.basins.total_persistence),
            "n_separations": self.n_separations,
            "n_confirmed": self.n_confirmed,
            "n_full_space_minima": self.n_full_space_minima,
            "ratio_mean": self.ratio_mean,
            "ratio_max": self.ratio_max,
            "seconds": self.seconds,
        }


def layers(blocks: tuple[int, ...]) -> tuple[int, ...]:
    """Linear layers of residual MLPs with these numbers of blocks."""
    return tuple(2 * b + 2 for b in blocks)


def full_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Cross-entropy and accuracy of ``model`` in eval mode on all of ``(x, y)``."""
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was)
    return float(torch.nn.functional.cross_entropy(out, y)), float(
        (out.argmax(1) == y).float().mean()
    )


def train_to_target(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, target: float, max_epochs: int
) -> tuple[int, float, float]:
    """SGD epoch by epoch until the eval-mode training loss is at most ``target``."""
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    loss, acc = full_loss(model, x, y)
    epochs = 0
    while epochs < max_epochs and not loss <= target:
        train(model, (x, y), epochs=1, optimizer=opt, seed=epochs, progress=False)
        epochs += 1
        loss, acc = full_loss(model, x, y)
    return epochs, loss, acc


def study(blocks: int, skip: bool, s: dict[str, Any], data: tuple, ev: tuple) -> Result:
    """Train one network, evaluate its plane and analyse it."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    torch.manual_seed(0)
    model = ResidualMLP(64, width=s["width"], n_blocks=blocks, skip=skip)
    epochs, loss, acc = train_to_target(model, *data, s["target_loss"], s["max_epochs"])
    seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    proj = PlaneProjector(model, random_directions(model, 2, "filter", "biasbn", seed=1))
    grid = Grid.square(resolution=s["resolution"], extent=1.0)
    fld = evaluate(
        model, ev, "cross_entropy", proj, grid, progress=False, device="cpu", deterministic=True
    )
    seconds["landscape"] = time.perf_counter() - t

    t = time.perf_counter()
    topo = analyze(fld, min_persistence=s["min_persistence"], hessian=False)
    check = verify_topology(
        model, ev, "cross_entropy", fld, topo, projector=proj, steps=s["verify_steps"],
        n_points=11, device="cpu",
    )  # fmt: skip
    seconds["topology+verify"] = time.perf_counter() - t

    t = time.perf_counter()
    hgrid = Grid.square(resolution=s["hessian_resolution"], extent=1.0)
    ratio = hessian_map(
        model, ev, "cross_entropy", proj, hgrid, k=s["hessian_k"], progress=False, device="cpu"
    )
    seconds["hessian"] = time.perf_counter() - t
    return Result(
        depth=model.depth,
        skip=skip,
        n_params=sum(p.numel() for p in model.parameters()),
        epochs=epochs,
        train_loss=loss,
        train_accuracy=acc,
        field=fld,
        topology=topo,
        n_separations=check.n_separations,
        n_confirmed=check.n_confirmed,
        n_full_space_minima=int(np.count_nonzero(check.is_full_space_minimum)),
        ratio=ratio,
        seconds=seconds,
    )


def plot_landscapes(results: list[Result], depths: tuple[int, ...], path: Path) -> None:
    """Log-loss contours with persistent critical points: a row per shortcut setting."""
    from matplotlib.figure import Figure

    from losstopo.plot import plot_contour, save_figure

    fig = Figure(figsize=(3.6 * len(depths), 6.4))
    axes = fig.subplots(2, len(depths), squeeze=False)
    for r in results:
        ax = axes[0 if r.skip else 1, depths.index(r.depth)]
        plot_contour(r.field, ax=ax, log=True, levels=20, critical_points=r.topology, title=r.name)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    fig.tight_layout()
    save_figure(fig, path, dpi=70)


def plot_ratios(results: list[Result], depths: tuple[int, ...], path: Path) -> None:
    """``|lambda_min / lambda_max|`` maps on one colour scale."""
    from matplotlib.figure import Figure

    from losstopo.plot import save_figure

    top = max(max(r.ratio_max for r in results), 1e-3)
    fig = Figure(figsize=(3.2 * len(depths), 5.6))
    axes = fig.subplots(2, len(depths), squeeze=False)
    image = None
    for r in results:
        ax = axes[0 if r.skip else 1, depths.index(r.depth)]
        (xa, ya) = r.ratio.grid.axes.values()
        image = ax.pcolormesh(
            xa, ya, r.ratio.values.T, vmin=0.0, vmax=top, cmap="magma", shading="nearest"
        )
        ax.set_title(f"{r.name}: mean {r.ratio_mean:.2f}", fontsize=9)
        ax.set_aspect("equal")
    if image is not None:
        fig.colorbar(image, ax=axes, label="|lambda_min / lambda_max|", shrink=0.8)
    save_figure(fig, path, dpi=70)


def verdicts(records: list[dict[str, Any]], depths: tuple[int, ...]) -> list[str]:
    """One line per measure: is it larger without shortcuts, and does the gap grow with depth?"""
    by = {(r["depth"], r["skip"]): r for r in records}
    measures = {
        "persistent minima": "n_minima",
        "total persistence": "total_persistence",
        "confirmed separations": "n_confirmed",
        "mean |lambda_min / lambda_max|": "ratio_mean",
    }
    lines = []
    for label, key in measures.items():
        gaps = [float(by[d, False][key]) - float(by[d, True][key]) for d in depths]
        more = [d for d, g in zip(depths, gaps, strict=True) if g > 0]
        less = [d for d, g in zip(depths, gaps, strict=True) if g < 0]
        grows = all(b >= a for a, b in zip(gaps, gaps[1:], strict=False))
        text = (
            f"- **{label}**: no-skip minus skip = "
            + ", ".join(f"{g:+.3g} (depth {d})" for d, g in zip(depths, gaps, strict=True))
            + ". "
        )
        if more and not less and grows and gaps[-1] > 0:
            text += "Larger without shortcuts at every depth where they differ, and the gap grows with depth: Li et al.'s direction."
        elif gaps[-1] > 0:
            text += (
                f"Larger without shortcuts at the deepest ({depths[-1]}), but not consistently "
                f"across depths (larger at {more or 'none'}, smaller at {less or 'none'})."
            )
        elif all(g == 0 for g in gaps):
            text += "No difference at any depth: this measure does not show the finding here."
        else:
            text += (
                f"Not larger without shortcuts at the deepest ({depths[-1]}): this measure "
                "does not show the finding here."
            )
        lines.append(text)
    return lines


def write_report(run: dict[str, Any], out: Path, img: Path) -> None:
    """``out`` from the JSON-ready ``run`` (settings, machine, records)."""
    s, mode, records = run["settings"], run["mode"], run["records"]
    depths = layers(s["blocks"])
    rel = os.path.relpath(img, out.parent)
    rows = [
        "| network | params | epochs | train loss | train acc | loss at centre | persistent minima "
        "| total persistence | separations (confirmed) | full-space minima | ratio mean | ratio max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in records:
        rows.append(
            f"| {r['name']} | {r['n_params']:,} | {r['epochs']} | {r['train_loss']:.4f} | "
            f"{r['train_accuracy']:.3f} | {r['centre_loss']:.4f} | {r['n_minima']} | "
            f"{r['total_persistence']:.4g} | {r['n_separations']} ({r['n_confirmed']}) | "
            f"{r['n_full_space_minima']}/{r['n_minima']} | {r['ratio_mean']:.3f} | "
            f"{r['ratio_max']:.3f} |"
        )
    reached = [r["name"] for r in records if not r["train_loss"] <= s["target_loss"]]
    timing = ", ".join(f"{r['name']} {sum(r['seconds'].values()):.0f} s" for r in records)
    threads, wall = run["threads"], run["wall_seconds"]
    text = f"""# Skip connections and the shape of the landscape (Li et al. 2018, small)

Generated by `benchmarks/reproduce_skip_connections.py{" --quick" if mode == "quick" else ""} --threads {threads}`
on {run["date"]}: {run["machine"]}, torch on {threads} thread(s), wall time
{wall / 60:.1f} min ({timing}). Rerun it to regenerate this page and its figures.

Li et al. ("Visualizing the Loss Landscape of Neural Nets", 2018) found that CIFAR-10 ResNets
keep a smooth, convex-looking landscape as they get deeper, while the same networks without
shortcuts turn chaotic (ResNet-56-noshort, ResNet-110-noshort): many local minima, and large
negative curvature in the full space. This page asks whether the direction of that finding shows
on a problem small enough for two CPU cores.

## Setup

- Networks: deep residual MLPs (`losstopo.models.ResidualMLP`: a linear stem, blocks of
  `relu(x + bn(fc(relu(bn(fc(x))))))` as in the CIFAR ResNet's basic block, a linear head),
  {s["width"]} units wide, with {", ".join(map(str, s["blocks"]))} blocks, that is
  {", ".join(map(str, depths))} linear layers (ResMLP-N: N layers), with and without the
  shortcut (`skip=False` drops the `x +`), on the flattened 8x8 digits.
- Training: SGD (lr 0.02, momentum 0.9, batches of 64, seed 0) on
  {"all" if s["n_train"] is None else s["n_train"]} training digits, epoch by epoch until the
  training loss (BatchNorm in eval mode) is at most {s["target_loss"]} or {s["max_epochs"]}
  epochs have passed.
- Landscape: training loss on the first {s["n_eval"]} training digits, on a
  {s["resolution"]}x{s["resolution"]} grid over [-1, 1]^2 of a plane through the trained
  weights, spanned by two Gaussian directions (seed 1) filter-normalised with biases and
  BatchNorm fixed (`random_directions(model, 2, "filter", "biasbn", seed=1)`); BatchNorm in
  eval mode. The same normalisation, grid and seed for every network.
- Topology: `analyze(field, min_persistence={s["min_persistence"]})` (absolute, in loss units):
  persistent minima of the join tree and their total persistence. `verify_topology`: each
  separation between two persistent minima is checked on the straight full-space segment between
  the decoded minima (confirmed when its barrier is at least half the picture's), and each
  picture minimum gets {s["verify_steps"]} Lanczos steps (a full-space minimum when no negative
  curvature shows).
- Curvature: `hessian_map` on a {s["hessian_resolution"]}x{s["hessian_resolution"]} grid of the
  same plane, {s["hessian_k"]} Lanczos steps per point: `|lambda_min / lambda_max|` (0: locally
  convex in the full space; Li et al.'s Fig. 7).

## Results

{chr(10).join(rows)}

"Separations (confirmed)": separations of the picture's simplified join tree, and how many the
full space confirms. "Full-space minima": picture minima without negative full-space curvature,
out of the persistent minima. "Ratio": `|lambda_min / lambda_max|` over the curvature grid.
{"Networks that did not reach the target loss: " + ", ".join(reached) + "." if reached else "Every network reached the target training loss."}

![Loss landscapes, log10 of the loss, with the persistent critical points; top: with shortcuts,
bottom: without]({rel}/skip_landscapes.png)

![|lambda_min / lambda_max| over the plane, one colour scale; top: with shortcuts, bottom:
without]({rel}/skip_curvature.png)

## Reading

{chr(10).join(verdicts(records, depths))}

{READING.get(mode, "")}
"""
    out.write_text(text)


#: The reading of the full run, written after looking at its numbers (kept with the script so
#: that a rerun that changes them shows the text to revise).
READING: dict[str, str] = {
    "quick": (
        "This is the `--quick` run: a few training digits, two shallow depths and a coarse grid, "
        "to check that the pipeline runs; its numbers say nothing about the finding."
    ),
    "full": """\
The lines above are computed from the table. What they mean, read from the run of 2026-11-30
(a rerun updates the table and figures, not this text):

**What matches Li et al.** With shortcuts, every depth from 4 to 34 linear layers gives the same
picture: one persistent minimum, no separation, one smooth bowl on the log scale, like their
ResNet-20/56/110. Without shortcuts, the shallow networks (4 and 10 layers) look the same as
their residual twins, as Li et al.'s ResNet-20-noshort still looks convex. From 18 layers on the
picture breaks up: 3 persistent minima at 18 layers (1 of its 2 separations confirmed along the
full-space segment), 15 at 34 layers with a total persistence of 2.5 (10 of 14 separations
confirmed), the chaotic landscape of their ResNet-56/110-noshort, and it grows with depth. The
curvature ratio follows at depth: its mean is 0.21 against 0.13 at 18 layers and 0.28 against
0.16 at 34, with the large ratios (strong negative curvature) in the broken-up outer regions, as
in their Fig. 7.

**Where it does not hold, or holds for another reason.**

- *Comparable training loss was not reached.* Without shortcuts the 10-, 18- and 34-layer
  networks stopped at the 60-epoch limit with training losses of 0.18, 0.77 and 2.32 (chance is
  2.30: the 34-layer one did not train at all), against 0.04-0.06 with shortcuts (the 34-layer
  residual net stopped at 0.059, just above the target). So at 34 layers the comparison is
  between a trained minimum and a point training could not leave; Li et al.'s noshort networks
  did train (ResNet-56-noshort to about 13% test error). Their claim that the chaotic landscape
  goes with poor trainability is what shows here; the claim that a well-trained deep network
  without shortcuts sits in a chaotic landscape is not tested by this run. Other optimisers did
  not fix this in trials outside this script: the 18-layer no-skip network stayed above 0.8 with
  SGD at lr 0.005 (80 epochs) and with Adam at 1e-3 (60 epochs), and no-skip networks of 26 and
  50 layers stayed near chance (2.0-2.3) with SGD at lr 0.02 and 0.05.
- *The curvature ratio does not separate shallow networks.* At 4 and 10 layers it is slightly
  lower without shortcuts (0.10 against 0.13, 0.13 against 0.15). With 10 Lanczos steps
  `lambda_min` is an upper bound, so ratios are underestimates and differences of a few
  hundredths are not meaningful.
- *No picture minimum is a full-space minimum*, not even the trained residual networks' (0/1):
  10 Lanczos steps find some negative curvature (beyond 1e-3 of `lambda_max`) at every one. SGD
  stops near, not at, a critical point, and the landscape is the eval-mode BatchNorm loss, not
  the training-mode loss SGD minimised. That column does not distinguish the two families.
- *One instance, not a statistic*: one training seed, one plane (direction seed 1), one width,
  512 training digits for the landscapes. The confirmed separations are checked on straight
  segments, which lie in the plane: they confirm the picture at its resolution, not barriers
  that a curve through the full space could avoid.
- *Residual MLPs, not convolutional ResNets*: the CIFAR ResNets (`CifarResNet`, which takes the
  digits' one channel and a width) cost far more per landscape point and per Hessian product on
  a CPU; the finding is about the shortcut around a two-layer BatchNorm block, which the residual
  MLP keeps. The machine was shared with other jobs during the run (one torch thread), so the
  wall time is an upper bound for an idle two-core machine.
""",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run for the tests")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the page to write (default: docs/findings.md; with --quick: findings_quick.md here)",
    )
    parser.add_argument(
        "--img-dir", type=Path, default=None, help="figures (default: img/ next to --out)"
    )
    parser.add_argument(
        "--blocks", type=lambda v: tuple(int(d) for d in v.split(",")), help="e.g. 1,4,8,16"
    )
    parser.add_argument("--width", type=int)
    parser.add_argument("--resolution", type=int)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite --out from the results a previous run saved next to its figures",
    )
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    s = dict(SETTINGS[mode])
    for key in ("blocks", "width", "resolution"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    torch.set_num_threads(args.threads)
    default = ROOT / "docs" / "findings.md" if mode == "full" else Path("findings_quick.md")
    out = (args.out or default).resolve()
    img = (args.img_dir or out.parent / "img").resolve()
    img.mkdir(parents=True, exist_ok=True)
    saved = img / f"skip_results{'_quick' if args.quick else ''}.json"
    if args.render_only:
        write_report(json.loads(saved.read_text()), out, img)
        print(f"wrote {out} from {saved}")
        return 0
    start = time.perf_counter()
    x, y = digits("train")
    if s["n_train"] is not None:
        x, y = x[: s["n_train"]], y[: s["n_train"]]
    ev = (x[: s["n_eval"]], y[: s["n_eval"]])
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for blocks in s["blocks"]:
            for skip in (True, False):
                r = study(blocks, skip, s, (x, y), ev)
                results.append(r)
                print(
                    f"{r.name}: {r.epochs} epochs, loss {r.train_loss:.4f}, minima "
                    f"{r.topology.n_minima}, total persistence "
                    f"{r.topology.basins.total_persistence:.4g}, separations {r.n_separations} "
                    f"({r.n_confirmed} confirmed), ratio mean {r.ratio_mean:.3f}, "
                    + ", ".join(f"{k} {v:.0f} s" for k, v in r.seconds.items()),
                    flush=True,
                )
    plot_landscapes(results, layers(s["blocks"]), img / "skip_landscapes.png")
    plot_ratios(results, layers(s["blocks"]), img / "skip_curvature.png")
    wall = time.perf_counter() - start
    run = {
        "mode": mode,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()},
        "machine": cpu_name(),
        "threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
        "wall_seconds": wall,
        "records": [r.record() for r in results],
    }
    saved.write_text(json.dumps(run, indent=1) + "\n")
    write_report(run, out, img)
    print(f"wrote {out} in {wall / 60:.1f} min")
    return 0 if all(math.isfinite(r.train_loss) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
