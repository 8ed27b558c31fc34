"""Draw the pictures of the user guide into docs/img/.

    python docs/make_figures.py               # every figure
    python docs/make_figures.py --concepts    # the topology concepts only (no ParaView needed)
    python docs/make_figures.py --paraview    # the ParaView screenshot only

The concept figures (docs/topology-concepts.md) show one analytic landscape: Himmelblau's function
from ``losstopo.testing``, tilted so that its four minima have four different depths. The ParaView
screenshot (docs/paraview.md) renders a small digits MLP's landscape, exported by
``write_paraview``, with the bundle's own ``open_in_paraview.py --screenshot`` under ``pvpython``
(through ``xvfb-run`` where there is no display).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from losstopo import LossField  # noqa: E402
from losstopo.plot import plot_contour, plot_merge_tree, plot_persistence_diagram  # noqa: E402
from losstopo.testing import analytic_field  # noqa: E402
from losstopo.topology import analyze  # noqa: E402

IMG = Path(__file__).resolve().parent / "img"
LETTERS = "ABCDEFGH"


def tilted_himmelblau(resolution: int = 101) -> LossField:
    """Himmelblau's function plus a tilt ``6x + 4y + 60``: four minima of different depths."""
    base = analytic_field("himmelblau", resolution=resolution)
    x, y = np.meshgrid(*base.grid.axes.values(), indexing="ij")
    return LossField(base.values + 6 * x + 4 * y + 60, base.grid, attrs={"analytic": "tilted"})


def label_minima(ax, topo, color="white") -> None:
    """Write A, B, C, ... (deepest first) next to the persistent minima."""
    for letter, b in zip(LETTERS, topo.basins, strict=False):
        ax.annotate(letter, b.coords, xytext=(6, 6), textcoords="offset points", color=color,
                    fontsize=13, fontweight="bold")  # fmt: skip


def save(fig, name: str) -> None:
    fig.savefig(IMG / name, dpi=90, bbox_inches="tight")
    plt.close(fig)
    print("wrote", IMG / name)


def concepts() -> None:
    field = tilted_himmelblau()
    topo = analyze(field, min_persistence=1.0)
    x, y = field.grid.axes.values()
    X, Y = np.meshgrid(x, y, indexing="ij")

    # 1. the landscape and its critical points
    fig, ax = plt.subplots(figsize=(6.2, 5))
    plot_contour(field, ax=ax, critical_points=topo.critical_points, log=True)
    label_minima(ax, topo)
    ax.set_title("critical points of a landscape")
    save(fig, "concepts-critical-points.png")

    # 2. the merge tree beside the landscape
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"wspace": 0.35})
    plot_contour(field, ax=left, log=True)
    label_minima(left, topo)
    sad = topo.critical_points.select(topo.critical_points.type == 1)
    left.scatter(sad.coords[:, 0], sad.coords[:, 1], marker="x", c="red", s=50, label="saddle")
    left.legend(loc="lower right", fontsize="small")
    left.set_title("landscape (log colour scale)")
    plot_merge_tree(topo.join_tree, ax=right)
    leaves = right.collections[-1].get_offsets()  # (x, birth) of each pair's minimum
    letter_of = {round(b.value, 6): LETTERS[i] for i, b in enumerate(topo.basins)}
    for lx, birth in np.asarray(leaves):
        right.annotate(letter_of.get(round(float(birth), 6), "?"), (lx, birth), xytext=(6, -4),
                       textcoords="offset points", fontsize=13, fontweight="bold")  # fmt: skip
    right.set_ylabel("loss")
    save(fig, "concepts-merge-tree.png")

    # 3. persistence: sublevel sets {loss <= t} growing, and the diagram
    pairs = topo.join_tree.pairs
    levels = [60.0, 100.0, 143.0]
    fig, axes = plt.subplots(
        1, 4, figsize=(17, 4.2), gridspec_kw={"width_ratios": [1, 1, 1, 1.1], "wspace": 0.25}
    )
    logv = np.log10(field.values)
    for ax, t in zip(axes[:3], levels, strict=True):
        ax.contour(X, Y, logv, levels=20, colors="k", linewidths=0.3, alpha=0.4)
        ax.contourf(X, Y, field.values, levels=[field.values.min() - 1, t], colors=["#3b75af"])
        label_minima(ax, topo, color="black")
        n = sum(1 for b, d in pairs if b <= t < d)
        ax.set_title(f"loss <= {t:g}: {n} components")
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    plot_persistence_diagram(topo.diagram, ax=axes[3])
    top = axes[3].get_ylim()[1]
    for letter, b in zip(LETTERS, topo.basins, strict=False):
        death = b.saddle_value if np.isfinite(b.saddle_value) else None
        yy = death if death is not None else top
        axes[3].annotate(letter, (b.value, yy), xytext=(5, -12), textcoords="offset points",
                         fontsize=12, fontweight="bold")  # fmt: skip
    save(fig, "concepts-persistence.png")

    # 4. basins, before and after simplification
    coarse = analyze(field, min_persistence=20.0)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.6))
    for ax, summary, what in ((axes[0], topo, "1"), (axes[1], coarse, "20")):
        seg = summary.basin_segmentation()
        letter = np.zeros_like(seg)  # colour each basin by its minimum's letter, in both panels
        for i, b in enumerate(summary.basins):
            letter[seg == seg.flat[b.index]] = i
        ax.pcolormesh(X, Y, letter, cmap="Pastel1", shading="auto", vmin=0, vmax=8)
        ax.contour(X, Y, logv, levels=20, colors="k", linewidths=0.3, alpha=0.5)
        label_minima(ax, summary, color="black")
        ax.set_title(f"min_persistence={what}: {len(summary.basins)} basins")
        ax.set_aspect("equal")
    save(fig, "concepts-basins.png")


def paraview_screenshot() -> None:
    import torch

    from losstopo import Grid, PCAProjector, evaluate, train
    from losstopo.datasets import digits
    from losstopo.export import write_paraview
    from losstopo.models import MLP

    pvpython = shutil.which("pvpython")
    if pvpython is None:
        sys.exit("pvpython (ParaView) is not installed; install ParaView to draw the screenshot.")
    torch.manual_seed(0)
    x, y = digits("train")
    data = (x[:600], y[:600])
    model = MLP(64, (16,), 10)
    traj = train(model, data, epochs=12, lr=0.1, seed=0, progress=False)
    proj = PCAProjector(n_components=2).fit(traj)  # centred on the last checkpoint
    reach = float(np.abs(proj.transform(traj)).max())
    grid = Grid.square(resolution=61, extent=1.25 * reach)  # the whole path, in a square
    field = evaluate(model, data, "cross_entropy", proj, grid, trajectory=traj, progress=False)
    topo = analyze(field, min_persistence=0.02, relative=True)
    with tempfile.TemporaryDirectory() as tmp:
        write_paraview(field, tmp, topology=topo)
        cmd = [pvpython, "open_in_paraview.py", "--screenshot", str(IMG / "paraview-landscape.png"),
               "--size", "1000", "700"]  # fmt: skip
        if not os.environ.get("DISPLAY"):
            xvfb = shutil.which("xvfb-run")
            if xvfb is None:
                sys.exit("rendering needs an X display: set DISPLAY or install xvfb-run.")
            cmd = [xvfb, "-a", *cmd]
        subprocess.run(cmd, cwd=tmp, check=True)
    print("wrote", IMG / "paraview-landscape.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", action="store_true", help="the topology figures only")
    parser.add_argument("--paraview", action="store_true", help="the ParaView screenshot only")
    args = parser.parse_args()
    IMG.mkdir(exist_ok=True)
    every = not (args.concepts or args.paraview)
    if every or args.concepts:
        concepts()
    if every or args.paraview:
        paraview_screenshot()


if __name__ == "__main__":
    main()
