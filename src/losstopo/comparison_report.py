"""Everything a comparison writes to its output directory, and its HTML page.

:func:`write_comparison` writes ``comparison.csv`` (one row per landscape), ``comparison.md`` (the
table to paste into a paper, with both distance matrices and a legend), ``distances.csv`` (the
pairwise bottleneck and Wasserstein distances), ``distances.png`` (heatmaps of both),
``landscapes.png`` (small multiples on one colour scale) and ``comparison.html`` (all of it on one
self-contained page, which ``losstopo report`` links to). Each file is written by rename, so an
interrupted run never leaves half a file.

Examples
--------
>>> import tempfile, pathlib
>>> from losstopo import compare
>>> from losstopo.testing import analytic_field
>>> fields = [analytic_field("double_well", 21), analytic_field("double_well", 21)]
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> sorted(write_comparison(compare(fields, ["a", "b"]), fields, out))  # doctest: +NORMALIZE_WHITESPACE
['comparison.csv', 'comparison.html', 'comparison.md', 'distances.csv', 'distances.png',
 'landscapes.png']
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ._version import __version__
from .compare import Comparison
from .compare.comparison import COLUMNS, format_number
from .errors import InvalidTypeError
from .field import LossField
from .io.replace import write_replacing
from .plot import plot_distance_heatmap, plot_small_multiples

__all__ = ["FILES", "comparison_html", "write_comparison"]

#: The files :func:`write_comparison` writes, by role.
FILES = {
    "table": "comparison.csv",
    "markdown": "comparison.md",
    "distances": "distances.csv",
    "heatmap": "distances.png",
    "landscapes": "landscapes.png",
    "page": "comparison.html",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;color:#222;padding:0 1rem}h1{font-size:1.6rem}
h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .45rem;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}.muted{color:#777}img{max-width:100%}
"""


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()


def _heatmaps(comparison: Comparison) -> Figure:
    """Both distance heatmaps side by side on one figure."""
    from matplotlib.image import imread

    parts = [_png(plot_distance_heatmap(comparison, k)) for k in ("bottleneck", "wasserstein")]
    images = [imread(io.BytesIO(p), format="png") for p in parts]
    h = max(im.shape[0] for im in images) / 120
    w = sum(im.shape[1] for im in images) / 120
    fig = Figure(figsize=(w, h))
    for k, im in enumerate(images):
        ax = fig.add_axes((k / 2, 0, 0.5, 1))
        ax.imshow(im)
        ax.set_axis_off()
    return fig


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}"></p>'


def comparison_html(comparison: Comparison, heatmap_png: bytes, landscapes_png: bytes) -> str:
    """The comparison as one self-contained HTML page (figures embedded, no scripts)."""
    c = comparison
    cols = list(c.table)
    rows = [
        [label, *(format_number(c.table[k][i], 4) for k in cols)]
        for i, label in enumerate(c.labels)
    ]
    parts = [
        "<h2>Basin metrics</h2>",
        _table(["landscape", *cols], rows),
        "<ul class=muted>"
        + "".join(
            f"<li><code>{html.escape(k)}</code>: {html.escape(COLUMNS[k])}</li>" for k in cols
        )
        + "</ul>",
    ]
    thr = c.attrs.get("min_persistence", float("nan"))
    how = "of each field's value range" if c.attrs.get("relative") else "(absolute)"
    parts.append(
        f"<p class=muted>min_persistence {thr:g} {html.escape(how)}; connectivity "
        f"{html.escape(str(c.attrs.get('connectivity')))}; Wasserstein order "
        f"{c.attrs.get('order', 1.0):g}"
        + (
            "; compared with force (the landscapes differ in set-up)"
            if c.attrs.get("force")
            else ""
        )
        + "</p>"
    )
    parts.append("<h2>Distances between persistence diagrams</h2>")
    for kind in ("bottleneck", "wasserstein"):
        m = getattr(c, kind)
        drows = [[a, *(format_number(x, 4) for x in m[i])] for i, a in enumerate(c.labels)]
        parts.append(f"<h3>{kind.capitalize()}</h3>" + _table(["", *c.labels], drows))
    parts.append(_img(heatmap_png, "distance heatmaps"))
    parts.append("<h2>Landscapes (one colour scale)</h2>" + _img(landscapes_png, "landscapes"))
    notes = c.attrs.get("notes") or {}
    if notes:
        parts.append(
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in notes.items())
            + "</ul>"
        )
    prov = c.attrs.get("provenance") or {}
    if prov:
        keys = list(next(iter(prov.values())))
        prow = [[label, *(str(prov[label].get(k)) for k in keys)] for label in prov]
        parts.append("<h2>Set-up of each landscape</h2>" + _table(["landscape", *keys], prow))
    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>losstopo comparison</title><style>{_CSS}</style></head><body>"
        f"<h1>losstopo comparison: {len(c)} landscapes</h1>"
        f'<p class="muted">{html.escape(", ".join(c.labels))} &middot; losstopo '
        f"{html.escape(__version__)} &middot; {html.escape(stamp)}</p>"
        + "".join(parts)
        + "</body></html>\n"
    )


def write_comparison(
    comparison: Comparison,
    fields: Sequence[LossField],
    out_dir: str | os.PathLike[str],
    *,
    log: bool | None = None,
) -> dict[str, Path]:
    """Write the files of :data:`FILES` for ``comparison`` (of ``fields``) into ``out_dir``.

    Returns file name -> path. ``log``: colour the landscapes by ``log10`` of the loss (default
    when every finite loss is positive).
    """
    if not isinstance(comparison, Comparison):
        raise InvalidTypeError(
            f"write_comparison needs a Comparison (from losstopo.compare); got "
            f"{type(comparison).__name__}."
        )
    out = Path(out_dir)
    written: dict[str, Path] = {}

    def put(name: str, write: Any) -> None:
        path = out / name
        write_replacing(path, write)
        written[name] = path

    put(FILES["table"], lambda tmp: comparison.to_csv(tmp))
    put(FILES["markdown"], lambda tmp: tmp.write_text(comparison.to_markdown(), encoding="utf-8"))
    put(FILES["distances"], lambda tmp: comparison.distances_csv(tmp))
    heat = _png(_heatmaps(comparison))
    multiples = _png(
        plot_small_multiples(fields, comparison.labels, summaries=comparison.summaries, log=log)
    )
    put(FILES["heatmap"], lambda tmp: tmp.write_bytes(heat))
    put(FILES["landscapes"], lambda tmp: tmp.write_bytes(multiples))
    page = comparison_html(comparison, heat, multiples)
    put(FILES["page"], lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return {name: written[name] for name in sorted(written)}
