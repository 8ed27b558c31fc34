"""``losstopo export FILE --out DIR``: a ParaView bundle (``.vti/.vtp/.vtm``) or a PLY mesh."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import OUT_DIRECTORY, output_directory

if TYPE_CHECKING:
    from ..field import LossField
    from ..topology import TopologySummary

#: Simplification threshold for ``export`` of a field without topology: 1 % of its value range.
DEFAULT_EXPORT_PERSISTENCE = 0.01


def run(args: argparse.Namespace) -> int:
    from ..field import LossField

    field = LossField.load(args.file)
    out = Path(args.out)
    existed = out.exists()
    output_directory(out, create=False)
    topology = None if args.format == "ply" else export_topology(field, args)
    out.mkdir(exist_ok=True)
    try:
        if args.format == "ply":
            from ..export import write_ply

            written = [write_ply(field, out / (Path(args.file).stem + ".ply"), log=args.log)]
        else:
            from ..export import write_paraview

            # topology None: write no topology at all (not the field's own)
            written = write_paraview(field.with_topology(None), out, topology=topology)
    except BaseException:
        if not existed and not any(out.iterdir()):
            out.rmdir()  # a refused export leaves no empty directory behind
        raise
    for path in written:
        print(path)
    return 0


def export_topology(field: LossField, args: argparse.Namespace) -> TopologySummary | None:
    """The topology to export: the field's own unless ``--min-persistence`` asks for another.

    A field without topology is analysed with 1 % of its value range as threshold.
    """
    stored = field.topology
    if args.no_topology or not 1 <= field.grid.ndim <= 3:
        return None
    if stored is not None and args.min_persistence is None:
        return stored
    from ..topology import analyze

    if args.min_persistence is not None:
        threshold, relative = args.min_persistence, args.relative
    else:
        threshold, relative = DEFAULT_EXPORT_PERSISTENCE, True
    connectivity = stored.connectivity if stored is not None else "freudenthal"
    return analyze(field, min_persistence=threshold, relative=relative, connectivity=connectivity)


def register(subparsers: Any) -> None:
    """Add ``export`` to the ``losstopo`` command's subparsers."""
    exp = subparsers.add_parser(
        "export", help="write a field (and its topology) for ParaView or as a PLY mesh"
    )
    exp.add_argument("file", help="a field file written by losstopo")
    exp.add_argument("--out", required=True, metavar="DIR", help=OUT_DIRECTORY)
    exp.add_argument(
        "--format",
        default="vtk",
        choices=["vtk", "ply"],
        help="vtk: .vti/.vtp/.vtm bundle + open_in_paraview.py; ply: a height-field mesh of a "
        "2D field",
    )
    exp.add_argument("--log", action="store_true", help="PLY heights from log10 of the loss")
    exp.add_argument(
        "--min-persistence",
        type=float,
        default=None,
        help="topology threshold (default: the field's stored summary, else 1%% of the value "
        "range)",
    )
    exp.add_argument(
        "--relative", action="store_true", help="read --min-persistence as a fraction of the range"
    )
    exp.add_argument("--no-topology", action="store_true", help="export the field and paths only")
    exp.set_defaults(func=run)
