"""``losstopo info FILE``: what a field file holds, or how far a partial run has come."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..field import LossField
    from ..io.hdf5 import read_progress

    done, total, complete = read_progress(args.file)
    if not complete:
        print(
            f"{args.file}: partial run, {done} of {total} points computed; rerun the same command "
            "to resume."
        )
        return 0
    field = LossField.load(args.file)
    v = field.values
    finite = v[np.isfinite(v)]
    print(f"{args.file}")
    print(f"  grid      {field.grid!r}")
    print(f"  loss      {value_range(v)}  (non-finite: {v.size - finite.size})")
    for name, arr in field.metrics.items():
        print(f"  {name:<9} {value_range(arr)}")
    for name, path in field.paths.items():
        print(f"  path      {name}: {len(path)} points, steps {path.step[0]}..{path.step[-1]}")
    topo = field.topology
    if topo is not None:
        print(
            f"  topology  {topo.n_minima} minima, {topo.n_saddles} saddles, {topo.n_maxima} maxima "
            f"(min persistence {topo.min_persistence:.4g}, {topo.connectivity})"
        )
    print("  attrs     " + json.dumps(field.attrs, default=str)[:2000])
    return 0


def value_range(values: np.ndarray) -> str:
    """``min A  max B`` of the finite values, or a note that there are none.

    >>> import numpy as np
    >>> value_range(np.array([np.nan, np.inf]))
    'no finite values'
    """
    import numpy as np

    finite = values[np.isfinite(values)]
    if not finite.size:
        return "no finite values"
    return f"min {finite.min():.6g}  max {finite.max():.6g}"


def register(subparsers: Any) -> None:
    """Add ``info`` to the ``losstopo`` command's subparsers."""
    info = subparsers.add_parser("info", help="describe a field file (or a partial run)")
    info.add_argument("file", help="a field file written by losstopo (writes nothing)")
    info.set_defaults(func=run)
