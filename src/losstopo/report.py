"""One self-contained HTML report of a run directory.

:func:`write_report` gathers what a run left in its directory and writes ``report.html``: the PNG
figures (embedded as base64, so the file can be mailed or archived alone), a landscape figure
for every field (``*.h5``) when the run saved no PNG, tables of ``summary.json``, ``topology.json`` and the
fidelity CSVs (``*fidelity*.csv``), the provenance recorded in each field's ``attrs``, and
relative links to the ParaView bundles (``*.vtm``) and their ``open_in_paraview.py`` (the page
says so: they work while it stays in the run directory). Every part
is optional; missing or unreadable pieces are listed instead of failing. The page has no
scripts and no external resources.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from losstopo import Grid, LossField
>>> run = pathlib.Path(tempfile.mkdtemp())
>>> g = Grid.square(resolution=11, n_components=2)
>>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
>>> LossField(x**2 + y**2, g, attrs={"seed": 0}).save(run / "bowl.h5")
>>> write_report(run).name
'report.html'
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .errors import InvalidParameterError, validate_output_path
from .field import LossField
from .hessian.checks import CriticalCheck
from .io.replace import refuse_clobbering, write_replacing
from .topology import TopologySummary
from .verify import TopologyCheck

MAX_IMAGE_BYTES = 8 * 2**20
MAX_IMAGES = 60
MAX_LIST = 12
MAX_ROWS = 200

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5rem;vertical-align:top}figure img{max-width:520px;border:1px solid #eee}
figcaption{font-size:.8rem;color:#555}.muted{color:#777;font-size:.85rem}code{background:#f6f6f6;padding:0 .2rem}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST:
            return f"[{len(value)} items: {', '.join(_fmt(v) for v in value[:4])}, ...]"
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in list(value.items())[:MAX_LIST]) + "}"
    return str(value)


def _flatten(data: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    """Nested mappings as ``(dotted key, value)`` rows; lists and deep parts stay summarised."""
    if isinstance(data, Mapping) and depth < 3:
        rows: list[tuple[str, Any]] = []
        for k, v in data.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)
        return rows
    return [(prefix or "value", data)]


def _kv_table(rows: list[tuple[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">(empty)</p>'
    body = "".join(
        f"<tr><th>{_esc(k)}</th><td{' class=num' if isinstance(v, (int, float)) else ''}>"
        f"{_esc(_fmt(v))}</td></tr>"
        for k, v in rows[:MAX_ROWS]
    )
    more = (
        f'<p class="muted">{len(rows) - MAX_ROWS} more rows not shown.</p>'
        if len(rows) > MAX_ROWS
        else ""
    )
    return f"<table>{body}</table>{more}"


def _grid_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows[:MAX_ROWS]
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(data: bytes, caption: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{b64}" alt="{_esc(caption)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _field_figure(field: LossField) -> bytes | None:
    """A PNG of a 1D profile or a 2D contour map (with its topology if attached)."""
    from . import plot

    if field.grid.ndim == 1:
        fig = plot.plot_profile(field)
    elif field.grid.ndim == 2:
        fig = plot.plot_contour(
            field, critical_points=field.topology, log=bool(np.nanmin(field.values) > 0)
        )
    else:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _read_json(path: Path, problems: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: not readable JSON ({exc.__class__.__name__}: {exc})")
        return None


def _read_csv(path: Path, problems: list[str]) -> tuple[list[str], list[list[str]]] | None:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: not readable CSV ({exc})")
        return None
    if not rows:
        return None
    return rows[0], [list(r) for r in rows[1:]]


def _fidelity_figure(header: list[str], rows: list[list[str]]) -> bytes | None:
    from . import plot

    records = [dict(zip(header, r, strict=False)) for r in rows]
    try:
        fig = plot.plot_fidelity(records)
    except (ValueError, TypeError):
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _field_section(path: Path, run_dir: Path, problems: list[str]) -> tuple[str, LossField | None]:
    try:
        field = LossField.load(path)
    except (ValueError, OSError) as exc:
        problems.append(f"{path.relative_to(run_dir)}: {exc}")
        return "", None
    v = field.values
    finite = v[np.isfinite(v)]
    rows: list[tuple[str, Any]] = [
        ("file", str(path.relative_to(run_dir))),
        ("grid", repr(field.grid)),
        (
            "loss range",
            f"{finite.min():.6g} .. {finite.max():.6g}" if finite.size else "no finite values",
        ),
        ("non-finite points", int(v.size - finite.size)),
        ("metrics", ", ".join(field.metrics) or "none"),
        ("paths", ", ".join(field.paths) or "none"),
    ]
    rows += [(f"attrs.{k}", val) for k, val in _flatten(field.attrs)]
    html = f"<h3>{_esc(path.stem)}</h3>{_kv_table(rows)}"
    if field.topology is not None:
        html += "<h4>Topology stored in the file</h4>" + _summary_html(field.topology)
    return html, field


def write_report(
    run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Write a self-contained ``report.html`` for a run directory and return its path.

    Parameters
    ----------
    run_dir : path-like
        A directory written by a losstopo run (``losstopo demo``, scripts): PNG figures,
        ``summary.json``, ``topology.json``, ``*fidelity*.csv``, fields ``*.h5``, ParaView
        bundles (``*.vtm``). Any of them may be absent.
    out : path-like, optional
        The HTML file to write (default ``run_dir/report.html``); a directory means
        ``out/report.html``. Its directory must exist.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InvalidParameterError(
            f"The run directory {run} does not exist or is not a directory; pass the directory "
            "a losstopo run wrote (e.g. the --out of losstopo demo)."
        )
    target = run / "report.html" if out is None else Path(out)
    if target.is_dir():
        target = target / "report.html"
    validate_output_path(target, "the report")
    refuse_clobbering(target, "html", "the report")
    problems: list[str] = []
    parts: list[str] = []

    # -- summary and topology tables (figures go between them, below)
    tables: dict[str, str] = {}
    for name, title in (("summary.json", "Summary"), ("topology.json", "Topology")):
        path = run / name
        if path.is_file():
            data = _read_json(path, problems)
            if data is not None:
                tables[name] = (
                    f"<h2>{title}</h2><p class=muted>from <code>{_esc(name)}</code></p>"
                    + (
                        _topology_tables(data, problems)
                        if name == "topology.json"
                        else _kv_table(_flatten(data))
                    )
                )
    parts.append(tables.get("summary.json", ""))
    figures_at = len(parts)
    parts.append(tables.get("topology.json", ""))

    # -- fidelity
    fid = sorted(p for p in run.rglob("*fidelity*.csv") if p.is_file())
    shown: set[Path] = set()
    if fid:
        parts.append("<h2>Projector fidelity</h2>")
        for path in fid:
            table = _read_csv(path, problems)
            if table is None:
                continue
            header, rows = table
            parts.append(f"<h3>{_esc(path.relative_to(run))}</h3>{_grid_table(header, rows)}")
            chart = path.with_suffix(".png")  # the bar chart written beside the table, if any
            png = chart.read_bytes() if chart.is_file() else _fidelity_figure(header, rows)
            if png and png[:4] == b"\x89PNG":
                parts.append(_img(png, f"fidelity: {path.name}"))
                shown.add(chart.resolve())

    # -- comparisons across landscapes (losstopo compare / sweep): their table and page
    for cmp_page in sorted(p for p in run.rglob("comparison.html") if p.is_file()):
        table = _read_csv(cmp_page.with_name("comparison.csv"), problems)
        rel = os.path.relpath(cmp_page, target.parent)
        parts.append(
            f'<h2>Comparison</h2><p class=muted>the full page: <a href="{_esc(rel)}">'
            f"{_esc(cmp_page.relative_to(run))}</a></p>" + (_grid_table(*table) if table else "")
        )

    # -- figures
    pngs = sorted(
        p
        for p in run.rglob("*.png")
        if p.is_file() and p.resolve() != target.resolve() and p.resolve() not in shown
    )
    figures = []
    for path in pngs[:MAX_IMAGES]:
        data = path.read_bytes() if path.stat().st_size <= MAX_IMAGE_BYTES else b""
        if data[:4] != b"\x89PNG":
            problems.append(f"{path.relative_to(run)}: skipped (not a PNG, or larger than 8 MiB)")
            continue
        figures.append(_img(data, str(path.relative_to(run))))
    if len(pngs) > MAX_IMAGES:
        problems.append(f"{len(pngs) - MAX_IMAGES} more PNG files not embedded")

    # -- fields: provenance, and a figure for fields without one
    h5 = sorted(p for p in run.rglob("*.h5") if p.is_file())
    prov = []
    for path in h5:
        section, field = _field_section(path, run, problems)
        prov.append(section)
        if field is not None and not pngs:  # a run without figures: draw its fields
            png = _field_figure(field)
            if png:
                figures.append(_img(png, f"{path.stem} (drawn for this report)"))
    if figures:
        parts.insert(figures_at, "<h2>Figures</h2>" + "".join(figures))
    if prov:
        parts.append("<h2>Fields and provenance</h2>" + "".join(prov))

    # -- ParaView bundles
    bundles = sorted(p for p in run.rglob("*.vtm") if p.is_file())
    if bundles:
        items = []
        for vtm in bundles:
            rel = os.path.relpath(vtm, target.parent)
            script = vtm.parent / "open_in_paraview.py"
            extra = ""
            if script.is_file():
                srel = os.path.relpath(script, target.parent)
                extra = (
                    f' &middot; <a href="{_esc(srel)}">open_in_paraview.py</a> '
                    f"(run <code>pvpython {_esc(srel)}</code>)"
                )
            items.append(f'<li><a href="{_esc(rel)}">{_esc(vtm.relative_to(run))}</a>{extra}</li>')
        parts.append(
            "<h2>ParaView</h2><p class=muted>Figures and tables are embedded in this page, but "
            "these links are relative to it: they open while report.html stays in its run "
            "directory beside the bundles; copy the whole directory to keep them.</p><ul>"
            + "".join(items)
            + "</ul>"
        )

    parts = [p for p in parts if p]
    if not parts:
        parts.append('<p class="muted">This directory holds no figures, tables or fields yet.</p>')
    if problems:
        parts.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{_esc(p)}</li>" for p in problems) + "</ul>"
        )
    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page = (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>losstopo report: {_esc(run.resolve().name)}</title><style>{CSS}</style></head><body>"
        f"<h1>losstopo report: {_esc(run.resolve().name)}</h1>"
        f'<p class="muted">{_esc(run.resolve())} &middot; losstopo {_esc(__version__)} &middot; {_esc(stamp)}</p>'
        + "".join(parts)
        + "</body></html>\n"
    )
    write_replacing(target, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return target


def _topology_tables(data: Any, problems: list[str]) -> str:
    """A topology JSON as readable tables: summaries (``TopologySummary.to_dict``) read back as
    summaries, one block per field when the JSON is keyed so, anything else as a flat table."""
    if _is_summary(data):
        try:
            return _summary_html(TopologySummary.from_dict(data))
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"topology.json: not a readable topology summary ({exc!r})")
    elif isinstance(data, Mapping) and data and all(isinstance(v, Mapping) for v in data.values()):
        if not any(k in data for k in ("critical_counts", "shape", "connectivity")):
            return "".join(
                f"<h3>{_esc(k)}</h3>{_topology_tables(v, problems)}" for k, v in data.items()
            )
    rows = _flatten(data)
    scalar = [(k, v) for k, v in rows if not isinstance(v, (list, tuple)) or len(v) <= MAX_LIST]
    long = [(k, v) for k, v in rows if isinstance(v, (list, tuple)) and len(v) > MAX_LIST]
    return _kv_table(scalar + long)


def _is_summary(data: Any) -> bool:
    return isinstance(data, Mapping) and str(data.get("schema", "")).startswith(
        "losstopo-topology/"
    )


_TYPE_LABELS = {0: "minima", 1: "1-saddles", 2: "2-saddles", 3: "maxima"}
_TYPE_LABEL = {0: "minimum", 1: "1-saddle", 2: "2-saddle", 3: "maximum"}


def _count(n: int, kind: int) -> str:
    """``"1 minimum"``, ``"2 minima"``: a count of critical points of one type, in words."""
    return f"{n} {_TYPE_LABEL[kind] if n == 1 else _TYPE_LABELS[kind]}"


def _summary_html(s: TopologySummary) -> str:
    """The few numbers a reader wants from a TopologySummary, then its basin table."""
    types = s.persistent.counts()
    b = s.basins
    rows: list[tuple[str, Any]] = [
        ("field", f"{'x'.join(map(str, s.shape))} ({', '.join(s.axis_names)})"),
        ("connectivity", s.connectivity),
        ("value range", f"{_fmt(s.value_min)} .. {_fmt(s.value_max)}"),
        ("non-finite vertices", s.n_nonfinite),
        ("min_persistence", s.min_persistence),
        (
            "raw critical points",
            ", ".join(_count(s.critical_counts.get(k, 0), k) for k in _TYPE_LABELS),
        ),
        ("Morse sum", s.morse_sum),
        (
            "persistent critical points",
            ", ".join(_count(types[k], k) for k in _TYPE_LABELS),
        ),
        ("persistent minima (basins)", b.n_minima),
        ("total persistence", b.total_persistence),
        ("mean elder-rule persistence", b.smad),
    ]
    html = _kv_table(rows)
    if len(b):
        keys = ["coords", "value", "saddle_value", "persistence", "size", "fraction", "flatness"]
        table = [[i] + [getattr(r, k) for k in keys] for i, r in enumerate(b.rows[:MAX_LIST])]
        html += "<h4>Basins</h4>" + _grid_table(["#", *keys], table)
    check = CriticalCheck.from_summary(s)
    if check is not None and len(check):
        html += _full_space_html(check)
    verified = TopologyCheck.from_summary(s)
    if verified is not None:
        html += _separations_html(verified)
    return html


def _minimum_status(check: TopologyCheck, i: int) -> str:
    if check.is_artifact[i]:
        return "artifact (not separated in full space)"
    return "basin" if check.is_full_space_minimum[i] else "basin; saddle in full space"


def _separations_html(check: TopologyCheck) -> str:
    """The basins and separations of a picture checked in the full space (``verify_topology``)."""
    minima = [
        [i, check.coords[i].tolist(), check.value[i], check.loss[i], check.lambda_min[i],
         check.checkpoint_distance[i], _minimum_status(check, i)]
        for i in range(min(check.n_minima, MAX_LIST))
    ]  # fmt: skip
    seps = [
        [f"{a} -> {b}", check.picture_barrier[j], check.straight_barrier[j],
         check.curve_barrier[j], check.status[j]]
        for j, (a, b) in enumerate(check.pair[:MAX_ROWS].tolist())
    ]  # fmt: skip
    note = (
        f"<p>Score {_fmt(check.score)}: {check.n_confirmed} of {check.n_separations} separations "
        f"confirmed (full-space barrier at least {_fmt(check.fraction)} of the picture's); "
        f"{check.n_artifact_minima} artifact minima (a full-space saddle, or a basin whose own "
        "separation is not confirmed).</p>"
    )
    header = ["#", "coords", "value", "full-space loss", "lambda_min", "checkpoint distance", ""]
    sep_header = ["basins", "picture barrier", "straight barrier", "curve barrier", "status"]
    return (
        "<h4>Basins and separations in the full parameter space</h4>"
        + note
        + _grid_table(header, minima)
        + (_grid_table(sep_header, seps) if seps else "")
    )


def _full_space_html(check: CriticalCheck) -> str:
    """The full-space check of a picture's critical points (``check_critical_points``)."""
    names = {0: "minimum", 1: "1-saddle", 2: "2-saddle", 3: "maximum"}
    rows = []
    for j in range(min(len(check), MAX_LIST)):
        status = "-"
        if check.type[j] == 0:
            status = "yes" if check.is_full_space_minimum[j] else "no: a saddle in full space"
        rows.append(
            [
                names.get(int(check.type[j]), str(check.type[j])),
                check.coords[j].tolist(),
                check.value[j],
                np.linalg.eigvalsh(check.fitted_hessian[j]).tolist(),
                np.linalg.eigvalsh(check.plane_hessian[j]).tolist(),
                check.lambda_min[j],
                check.lambda_max[j],
                check.grad_norm[j],
                status,
            ]
        )
    header = [
        "type", "coords", "value", "fitted Hessian eig.", "plane Hessian eig. (HVP)",
        "full-space lambda_min", "full-space lambda_max", "gradient norm", "full-space minimum",
    ]  # fmt: skip
    note = (
        f"<p>Each persistent critical point decoded to parameters: its Hessian restricted to "
        f"the picture (Jacobian: {_esc(check.jacobian)}) next to the fit of the picture's "
        f"values, and {check.attrs.get('lanczos_steps', '?')} Lanczos steps in the full space. "
        "A negative full-space lambda_min proves the point is not a minimum of the network.</p>"
    )
    return "<h4>Critical points in the full parameter space</h4>" + note + _grid_table(header, rows)
