"""The ``losstopo`` command.

A user mistake prints one sentence (what was wrong, what was expected, how to fix it) and exits
with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidParameterError, LosstopoError


def _import_object(spec: str, what: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidParameterError(
            f"{what} {spec!r} must be a built-in name or 'module:function'."
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
        raise InvalidParameterError(
            f"Could not import module {module_name!r} for {what} {spec!r} ({type(exc).__name__}: "
            f"{exc}); check that it is importable from the current directory."
        ) from exc
    obj = getattr(module, attr, None)
    if obj is None:
        raise InvalidParameterError(
            f"Module {module_name!r} has no attribute {attr!r} (from {what} {spec!r}); give "
            "'module:name' with a name the module defines."
        )
    return obj


def _call_user(obj: Any, spec: str, what: str) -> Any:
    """Call a user's factory, turning its exception into one clear sentence."""
    try:
        return obj()
    except Exception as exc:  # noqa: BLE001 - the user's code; report it, do not crash
        raise InvalidParameterError(
            f"Calling {what} {spec!r} raised {type(exc).__name__}: {exc}; fix the function or "
            "give another one."
        ) from exc


def resolve_model(spec: str, seed: int = 0) -> Any:
    from torch import nn

    from .models import BUILTIN_MODELS, build_model

    if spec in BUILTIN_MODELS:
        return build_model(spec, seed=seed)
    if ":" not in spec:
        raise InvalidParameterError(
            f"Unknown model {spec!r}; choose one of {', '.join(sorted(BUILTIN_MODELS))} or give "
            "'module:function' returning an nn.Module."
        )
    obj = _import_object(spec, "model")
    model = (
        _call_user(obj, spec, "model") if callable(obj) and not isinstance(obj, nn.Module) else obj
    )
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(
            f"Model {spec!r} gave a {type(model).__name__}, expected an nn.Module."
        )
    return model


def resolve_data(spec: str) -> Any:
    from .datasets import BUILTIN_DATA, load_builtin

    if spec in BUILTIN_DATA:
        return load_builtin(spec)
    if ":" not in spec:
        return load_builtin(spec)  # raises the clear unknown-name error
    obj = _import_object(spec, "data")
    return _call_user(obj, spec, "data") if callable(obj) else obj


# ---------------------------------------------------------------------- commands
def cmd_landscape(args: argparse.Namespace) -> int:
    import torch

    from . import Grid, PlaneProjector, evaluate, random_directions
    from .checkpoints import load_into
    from .datasets import DEFAULT_DATA_FOR_MODEL
    from .errors import validate_float, validate_int
    from .trajectory import train

    validate_int(args.resolution, "resolution", low=2)
    validate_float(args.extent, "extent", low=0.0, strict_low=True)
    validate_int(args.dims, "dims", low=1, high=3)
    out = Path(args.out)
    if not out.resolve().parent.is_dir():
        raise InvalidParameterError(
            f"The directory {out.resolve().parent} for --out does not exist; create it first."
        )
    validate_int(args.workers, "--workers", low=1)
    model = resolve_model(args.model, seed=args.seed)
    data_spec = args.data or DEFAULT_DATA_FOR_MODEL.get(args.model)
    if data_spec is None:
        raise InvalidParameterError(
            f"Model {args.model!r} has no built-in data; pass --data NAME or --data module:function."
        )
    data = resolve_data(data_spec)
    if args.workers > 1:
        return _spawn_workers(args, model, data)
    if args.checkpoint:
        load_into(model, args.checkpoint, allow_pickle=args.allow_pickle)
    elif args.model in ("mlp", "cnn", "pinn"):
        torch.manual_seed(args.seed)
        loss = "mse" if args.loss == "mse" or args.model == "pinn" else args.loss
        if not args.quiet:
            print(
                f"training built-in {args.model} on {data_spec} (seed {args.seed}, {args.epochs} epochs)"
            )
        train(
            model,
            data,
            epochs=args.epochs,
            seed=args.seed,
            loss=loss,
            progress=not args.quiet,
            lr=0.05 if args.model == "cnn" else 0.1,
        )
    elif not args.quiet and ":" not in args.model:
        print(
            f"note: built-in {args.model} is not trained here; it is evaluated at its random "
            "initialisation. Pass --checkpoint FILE.pt to evaluate trained weights.",
            file=sys.stderr,
        )
    loss_name = "mse" if args.model == "pinn" else args.loss
    directions = random_directions(
        model,
        n=args.dims,
        normalization=args.normalization,
        ignore=None if args.ignore == "none" else args.ignore,
        seed=args.seed,
    )
    proj = PlaneProjector(model, directions)
    grid = Grid.square(resolution=args.resolution, extent=args.extent, dims=args.dims)
    rank = int(os.environ.get("RANK", "0"))
    t0 = time.perf_counter()
    field = evaluate(
        model,
        data,
        loss_name,
        proj,
        grid,
        store=out,
        mode=args.mode,
        device=args.device,
        progress=not args.quiet and rank == 0,
        bn=args.bn,
        attrs={
            "seed": args.seed,
            "normalization": args.normalization,
            "ignore": args.ignore,
            "model_spec": args.model,
            "data_spec": data_spec,
            "checkpoint": str(args.checkpoint) if args.checkpoint else None,
        },
    )
    if rank == 0 and not args.quiet:
        lo = field.argmin()
        print(
            f"wrote {out}: {field.grid.size} points in {time.perf_counter() - t0:.1f} s; "
            f"loss at centre {_centre_value(field):.4g}, min {float(_finite_min(field)):.4g} at "
            + ", ".join(f"{n}={c:.3g}" for n, c in zip(field.grid.names, lo, strict=True))
        )
    return 0


def _finite_min(field: Any) -> float:
    import numpy as np

    v = field.values[np.isfinite(field.values)]
    return float(v.min()) if v.size else float("nan")


def _centre_value(field: Any) -> float:
    import numpy as np

    idx = tuple(int(np.argmin(np.abs(a))) for a in field.grid.axes.values())
    return float(field.values[idx])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn_workers(args: argparse.Namespace, model: Any, data: Any) -> int:
    """Start ``--workers`` local processes (gloo) that shard the grid, like torchrun would."""
    import torch

    from .checkpoints import load_into
    from .trajectory import train

    if args.checkpoint:
        load_into(model, args.checkpoint, allow_pickle=args.allow_pickle)
    elif args.model in ("mlp", "cnn", "pinn"):
        torch.manual_seed(args.seed)
        train(
            model,
            data,
            epochs=args.epochs,
            seed=args.seed,
            progress=False,
            loss="mse" if args.model == "pinn" else args.loss,
            lr=0.05 if args.model == "cnn" else 0.1,
        )
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.pt"
        torch.save(model.state_dict(), ckpt)
        argv = [a for a in sys.argv[1:]]
        argv = _strip_option(argv, "--workers")
        argv = _strip_option(argv, "--checkpoint")
        argv += ["--checkpoint", str(ckpt), "--workers", "1"]
        port = _free_port()
        procs = []
        for rank in range(args.workers):
            env = dict(
                os.environ,
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE=str(args.workers),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
                LOSSTOPO_BACKEND="gloo",
                OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
            )
            procs.append(subprocess.Popen([sys.executable, "-m", "losstopo.cli", *argv], env=env))
        codes = [p.wait() for p in procs]
    return max(codes)


def _strip_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == name:
            skip = True
            continue
        if a.startswith(name + "="):
            continue
        out.append(a)
    return out


def cmd_info(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from .field import LossField
    from .store import store_progress

    done, total, complete = store_progress(args.file)
    if not complete:
        print(
            f"{args.file}: partial run, {done} of {total} points computed; rerun the same command to resume."
        )
        return 0
    field = LossField.load(args.file)
    v = field.values
    finite = v[np.isfinite(v)]
    print(f"{args.file}")
    print(f"  grid      {field.grid!r}")
    print(
        f"  loss      min {finite.min():.6g}  max {finite.max():.6g}  (non-finite: {v.size - finite.size})"
    )
    for name, arr in field.metrics.items():
        print(f"  {name:<9} min {np.nanmin(arr):.6g}  max {np.nanmax(arr):.6g}")
    for name, path in field.paths.items():
        print(f"  path      {name}: {len(path)} points, steps {path.step[0]}..{path.step[-1]}")
    if field.topology is not None:
        print("  topology  attached")
    print("  attrs     " + json.dumps(field.attrs, default=str)[:2000])
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    import json

    from .errors import validate_float
    from .field import LossField
    from .topology import analyze, format_summary

    validate_float(args.min_persistence, "min-persistence", low=0.0)
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise InvalidParameterError(
            f"The directory {Path(args.json).resolve().parent} for --json does not exist; create it first."
        )
    field = LossField.load(args.file)
    summary = analyze(
        field,
        min_persistence=args.min_persistence,
        relative=args.relative,
        connectivity=args.connectivity,
    )
    print(format_summary(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary.to_dict(), indent=2))
        print(f"wrote {args.json}")
    if args.save:
        from .field import store_topology

        store_topology(args.file, summary)  # atomic; a partial run stays resumable
        print(f"stored the summary in {args.file}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .field import LossField

    field = LossField.load(args.file)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(
            f"--out {out} is a file; give a directory for the exported files."
        )
    if not out.parent.resolve().is_dir():
        raise InvalidParameterError(
            f"The parent directory of --out {out} does not exist; create it first."
        )
    topology = None if args.format == "ply" else _export_topology(field, args)
    created = not out.exists()
    out.mkdir(exist_ok=True)
    try:
        if args.format == "ply":
            from .export import write_ply

            written = [write_ply(field, out / (Path(args.file).stem + ".ply"), log=args.log)]
        else:
            from .export import write_paraview

            # topology None: write no topology at all (not the field's own, partial one)
            written = write_paraview(field.with_topology(None), out, topology=topology)
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # a refused export leaves no empty directory behind
        raise
    for path in written:
        print(path)
    return 0


def _export_topology(field: Any, args: argparse.Namespace) -> Any:
    """The topology to export: the field's own when complete, else computed here.

    A summary read back from a file keeps its numbers but not the per-vertex segmentation, so it
    is recomputed with the same threshold and connectivity (or ``--min-persistence``).
    """
    stored = field.topology
    if args.no_topology or not 1 <= field.grid.ndim <= 3:
        return None
    if stored is not None and stored.join_tree is not None and args.min_persistence is None:
        return stored
    from .topology import analyze

    if args.min_persistence is not None:
        threshold, relative = args.min_persistence, args.relative
    elif stored is not None:
        threshold, relative = stored.min_persistence, False
    else:
        threshold, relative = DEFAULT_EXPORT_PERSISTENCE, True
    connectivity = stored.connectivity if stored is not None else "freudenthal"
    return analyze(field, min_persistence=threshold, relative=relative, connectivity=connectivity)


#: Simplification threshold for ``export`` of a field without topology: 1 % of its value range.
DEFAULT_EXPORT_PERSISTENCE = 0.01


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    path = write_report(args.run_dir, out=args.out)
    print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), quiet=args.quiet)
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="losstopo",
        description="Loss landscapes of neural networks: evaluate, analyse, export.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"losstopo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="run the whole story on built-in data (digits)")
    demo.add_argument(
        "--out", default="demo-output", help="output directory (default: demo-output)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    land = sub.add_parser("landscape", help="evaluate a random-direction landscape around a model")
    land.add_argument(
        "--model", required=True, help="built-in name (mlp, cnn, resnet20, ...) or module:function"
    )
    land.add_argument("--checkpoint", help="state_dict file to load into the model (weights_only)")
    land.add_argument(
        "--allow-pickle", action="store_true", help="trust a checkpoint that needs full pickle"
    )
    land.add_argument(
        "--data",
        help="built-in data name (digits, digits-images, synthetic, ...) or module:function",
    )
    land.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"])
    land.add_argument("--resolution", type=int, default=41, help="points per axis (default 41)")
    land.add_argument("--extent", type=float, default=1.0, help="each axis spans [-extent, extent]")
    land.add_argument("--dims", type=int, default=2, help="1, 2 or 3 directions (default 2)")
    land.add_argument("--normalization", default="filter", choices=["filter", "layer", "none"])
    land.add_argument("--ignore", default="biasbn", choices=["biasbn", "none"])
    land.add_argument("--seed", type=int, default=0)
    land.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="training epochs for a built-in model without --checkpoint",
    )
    land.add_argument(
        "--out", required=True, help="output HDF5 file; resumes a matching partial run"
    )
    land.add_argument(
        "--workers", type=int, default=1, help="local processes sharding the grid (gloo)"
    )
    land.add_argument("--mode", default="auto", choices=["auto", "sequential", "vmap"])
    land.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)"
    )
    land.add_argument(
        "--bn", default="eval", choices=["eval", "recompute"], help="BatchNorm policy"
    )
    land.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    land.set_defaults(func=cmd_landscape)

    info = sub.add_parser("info", help="describe a field file (or a partial run)")
    info.add_argument("file")
    info.set_defaults(func=cmd_info)

    topo = sub.add_parser(
        "topology", help="critical points, merge trees, persistence and basins of a field"
    )
    topo.add_argument("file", help="a field file written by losstopo")
    topo.add_argument(
        "--min-persistence",
        type=float,
        default=0.0,
        help="simplification threshold (absolute, or a fraction of the value range with --relative)",
    )
    topo.add_argument(
        "--relative", action="store_true", help="read --min-persistence as a fraction of the range"
    )
    topo.add_argument("--connectivity", default="freudenthal", choices=["freudenthal", "cubical"])
    topo.add_argument("--json", help="also write the summary as JSON to this file")
    topo.add_argument(
        "--save", action="store_true", help="store the summary in FIELD.h5 (replacing its own)"
    )
    topo.set_defaults(func=cmd_topology)

    exp = sub.add_parser(
        "export", help="write a field (and its topology) for ParaView or as a PLY mesh"
    )
    exp.add_argument("file", help="a field file written by losstopo")
    exp.add_argument("--out", required=True, help="output directory (created if missing)")
    exp.add_argument(
        "--format",
        default="vtk",
        choices=["vtk", "ply"],
        help="vtk: .vti/.vtp/.vtm bundle + open_in_paraview.py; ply: a height-field mesh of a 2D field",
    )
    exp.add_argument("--log", action="store_true", help="PLY heights from log10 of the loss")
    exp.add_argument(
        "--min-persistence",
        type=float,
        default=None,
        help="topology threshold (default: the field's stored one, else 1%% of the value range)",
    )
    exp.add_argument(
        "--relative", action="store_true", help="read --min-persistence as a fraction of the range"
    )
    exp.add_argument("--no-topology", action="store_true", help="export the field and paths only")
    exp.set_defaults(func=cmd_export)

    rep = sub.add_parser("report", help="write a self-contained report.html for a run directory")
    rep.add_argument(
        "run_dir", help="a directory with fields, plots and summaries (e.g. demo-output)"
    )
    rep.add_argument("--out", help="output file (default RUN_DIR/report.html)")
    rep.set_defaults(func=cmd_report)

    from .cli_projectors import register as register_compare_projectors

    for register in (register_compare_projectors, *_EXTRA_COMMANDS):
        register(sub)
    return parser


#: Functions that add more subcommands (later capabilities: connectivity, hessian, compare ...).
_EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LosstopoError as exc:
        print(f"losstopo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unwritable, missing or full location
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(
            f"losstopo {args.command}: error: could not read or write a file{where}: "
            f"{exc.strerror or exc}; check the path and its permissions.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(
            f"losstopo {args.command}: interrupted; results written so far are kept.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
