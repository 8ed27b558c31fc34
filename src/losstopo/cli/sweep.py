"""``losstopo sweep CONFIG.toml``: several landscapes computed, analysed, verified and compared.

Every ``[[entry]]`` of the sweep file (see ``docs/sweep.md``) is one ``losstopo landscape`` run
(the same code, the same options: ``--workers N`` and torchrun shard each landscape's points),
written to ``DIR/<label>.h5``; rank 0 then analyses it (the topology, the Hessian at the centre
for a plane around the model, the full-space check of a random plane's basins), stores the
topology and check in the field file and writes ``DIR/<label>.json``. The sweep ends with
``losstopo compare`` over every finished entry, written into DIR.

A sweep killed anywhere resumes where it stopped when run again: a finished entry (its
``.json`` written for the same settings) is skipped, a partial landscape resumes from its store.
An entry that fails (a missing checkpoint, ...) is reported, the others go on, and the sweep
exits with status 1 after listing the failures. ``--only LABEL ...`` runs some entries without the
comparison (one task of a cluster array job).

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser()
>>> register(p.add_subparsers())
>>> p.parse_args(["sweep", "s.toml", "--workers", "2"]).workers
2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import (
    CheckpointError,
    EvaluationError,
    InvalidParameterError,
    LosstopoError,
    validate_int,
)
from .sweep_config import Entry, SweepConfig, load_sweep

DESCRIPTION = __doc__.split("Examples")[0].split("\n\n", 1)[1].replace("``", "")

#: Status a sweep exits with when some entries failed (the others finished).
FAILED_ENTRIES = 1


def run(args: argparse.Namespace) -> int:
    cfg = load_sweep(args.config)
    workers = validate_int(
        cfg.workers if args.workers is None else args.workers, "--workers", low=1
    )
    out = Path(args.out) if args.out else cfg.out
    entries = cfg.entries
    if args.only:
        labels = [e.label for e in cfg.entries]
        unknown = [x for x in args.only if x not in labels]
        if unknown:
            raise InvalidParameterError(
                f"--only names {', '.join(map(repr, unknown))}, which {args.config} does not "
                f"have; its entries are {', '.join(labels)}."
            )
        entries = tuple(e for e in cfg.entries if e.label in args.only)
    rank = int(os.environ.get("RANK", "0"))
    out = prepare_out(out)
    say = (lambda msg: print(msg, flush=True)) if rank == 0 and not args.quiet else _silent
    failures: list[tuple[str, str]] = []
    finished: list[str] = []
    n = len(entries)
    for i, entry in enumerate(entries, start=1):
        try:
            state = run_entry(entry, cfg, out, workers, args.quiet, rank)
        except (LosstopoError, OSError) as exc:
            failures.append((entry.label, str(exc)))
            say(f"[{i}/{n}] {entry.label}: failed: {exc}")
            continue
        except Exception as exc:  # the entry's own model or data failed: the others go on
            why = f"{type(exc).__name__}: {exc}"
            failures.append((entry.label, why))
            say(f"[{i}/{n}] {entry.label}: failed: {why}")
            continue
        finished.append(entry.label)
        say(f"[{i}/{n}] {entry.label}: {state}")
    if rank == 0 and finished and not args.only:
        try:
            compare_entries(cfg, out, finished, quiet=args.quiet)
        except LosstopoError as exc:
            failures.append(("comparison", str(exc)))
    if failures and rank == 0:
        print(
            f"losstopo sweep: {len(failures)} of {n} entries failed"
            + (" (or the comparison)" if failures[-1][0] == "comparison" else "")
            + ":\n"
            + "\n".join(f"  {label}: {why}" for label, why in failures),
            file=sys.stderr,
        )
    return FAILED_ENTRIES if failures else 0


def _silent(msg: str) -> None:
    return None


def prepare_out(out: Path) -> Path:
    """The output directory, validated and created (every rank may get here first)."""
    from ..errors import validate_output_path

    if out.exists():
        validate_output_path(out, "--out", directory=True)
    else:
        validate_output_path(out, "--out")
        out.mkdir(exist_ok=True)
    return out


def record_path(out: Path, label: str) -> Path:
    return out / f"{label}.json"


def is_finished(entry: Entry, out: Path) -> bool:
    """Whether the entry's field is complete and analysed for the same settings."""
    from ..io import read_progress

    rec, field = record_path(out, entry.label), out / f"{entry.label}.h5"
    if not (rec.is_file() and field.is_file()):
        return False
    try:
        data = json.loads(rec.read_text(encoding="utf-8"))
        complete = read_progress(field)[2]
    except (ValueError, OSError):
        return False
    return bool(complete and data.get("status") == "done" and data.get("argv") == entry.argv)


def run_entry(
    entry: Entry, cfg: SweepConfig, out: Path, workers: int, quiet: bool, rank: int
) -> str:
    """Compute (or resume) one entry's landscape, then (rank 0) analyse it; what was done."""
    from .landscape import landscape, register

    if is_finished(entry, out):
        return "already done"
    ckpt = entry.settings.get("checkpoint")
    if ckpt is not None and not Path(ckpt).is_file():
        raise CheckpointError(f"the checkpoint {ckpt} does not exist")
    field_path = out / f"{entry.label}.h5"
    argv = [*entry.argv, "--out", str(field_path), "--workers", str(workers)]
    argv += ["--quiet"] if quiet or rank != 0 else []
    sub = argparse.ArgumentParser(prog="losstopo").add_subparsers()
    register(sub)
    args = sub.choices["landscape"].parse_args(argv[1:])
    args.argv = argv
    status, task = landscape(args)
    if status != 0:
        raise EvaluationError(f"its landscape stopped with status {status}")
    if rank != 0:
        return "evaluated"
    return analyse_entry(entry, cfg, task, field_path)


def analyse_entry(entry: Entry, cfg: SweepConfig, task: Any, field_path: Path) -> str:
    """Topology, Hessian at the centre and full-space check of one field; stored beside it."""
    from ..field import LossField
    from ..io import store_topology
    from ..io.replace import write_replacing
    from ..jsonable import to_jsonable
    from ..topology import analyze

    field = LossField.load(field_path)
    t = cfg.topology
    topo = analyze(field, t["min_persistence"], t["relative"], t["connectivity"])
    projector = str(entry.settings.get("projector", "random"))
    seed = int(entry.settings.get("seed", 0))
    device = entry.settings.get("device")
    record: dict[str, Any] = {"label": entry.label, "argv": entry.argv}
    done = [f"{topo.n_minima} persistent minima"]
    if cfg.hessian["enabled"] and projector in ("random", "hessian"):
        from ..hessian import hessian_eigenvalues, hessian_trace

        spec = hessian_eigenvalues(
            task.model, task.data, task.loss, k=1, tol=cfg.hessian["tol"], seed=seed, device=device
        )
        trace = hessian_trace(
            task.model, task.data, task.loss, n_samples=cfg.hessian["trace_samples"], seed=seed,
            device=device,
        )  # fmt: skip
        record["hessian_at_centre"] = {
            "top_eigenvalue": float(spec.eigenvalues[0]),
            "trace": float(trace.value),
            "trace_stderr": float(trace.stderr),
        }
        done.append(f"top Hessian eigenvalue {float(spec.eigenvalues[0]):.4g}")
    if cfg.verify["enabled"] and projector == "random":
        from ..verify import verify_topology
        from .verify import rebuild_plane

        v = cfg.verify
        check = verify_topology(
            task.model, task.data, task.loss, field, topo,
            projector=rebuild_plane(field, task.model), curve=v["curve"], n_points=v["n_points"],
            fraction=v["fraction"], steps=v["steps"], seed=seed, device=device,
        )  # fmt: skip
        topo = check.attach(topo)
        record["verified_fraction"] = check.score
        done.append(f"{check.n_confirmed} of {check.n_separations} separations confirmed")
    elif cfg.verify["enabled"]:
        record["verify_skipped"] = "only random-plane landscapes are verified"
    store_topology(field_path, topo)  # atomic
    record["status"] = "done"
    text = json.dumps(to_jsonable(record), indent=1)
    write_replacing(record_path(field_path.parent, entry.label), lambda p: p.write_text(text))
    return "; ".join(done)


def compare_entries(cfg: SweepConfig, out: Path, labels: list[str], *, quiet: bool) -> None:
    """``losstopo compare`` over the finished entries, with their Hessians, into ``out``."""
    import dataclasses

    from ..compare import compare
    from ..compare.comparison import HESSIAN_KEY
    from ..comparison_report import write_comparison
    from ..field import LossField

    fields = []
    for label in labels:
        f = LossField.load(out / f"{label}.h5")
        rec = json.loads(record_path(out, label).read_text(encoding="utf-8"))
        if "hessian_at_centre" in rec:
            f = dataclasses.replace(f, attrs={**f.attrs, HESSIAN_KEY: rec["hessian_at_centre"]})
        fields.append(f)
    t, c = cfg.topology, cfg.compare
    comparison = compare(
        fields, labels, t["min_persistence"], t["relative"], connectivity=t["connectivity"],
        order=c["order"], force=c["force"],
    )  # fmt: skip
    log = {"auto": None, "log": True, "linear": False}[c["scale"]]
    written = write_comparison(comparison, fields, out, log=log)
    if not quiet:
        print(comparison.to_markdown(distances=False), end="")
        print(f"wrote {', '.join(written)} to {out}")


def register(subparsers: Any) -> None:
    """Add ``sweep`` to the ``losstopo`` command's subparsers."""
    p = subparsers.add_parser(
        "sweep",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="compute, analyse, verify and compare several landscapes from one TOML file",
        description=DESCRIPTION,
    )
    p.add_argument("config", metavar="CONFIG.toml", help="the sweep file (docs/sweep.md)")
    p.add_argument(
        "--workers", type=int, default=None, help="local processes per landscape (default: the "
        "file's `workers`, else 1)",
    )  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="output directory (default: the file's `out`)")
    p.add_argument(
        "--only", nargs="+", metavar="LABEL", help="run these entries only, without the final "
        "comparison (one job of an array; a plain run afterwards compares every entry)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="print only failures")
    p.set_defaults(func=run)
