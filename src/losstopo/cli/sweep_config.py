"""The sweep file of ``losstopo sweep``: TOML, checked completely before any work.

Layout (every table but ``[[entry]]`` optional)::

    out = "sweep-out"               # output directory, relative to this file
    workers = 1                     # local processes per landscape, as landscape --workers

    [defaults]                      # any landscape option, for every entry
    data = "digits"
    resolution = 21

    [[entry]]                       # one landscape per entry; its keys override [defaults]
    label = "mlp-a"                 # unique; names DIR/<label>.h5 (default: model and index)
    model = "mlp"                   # a built-in or module:function
    checkpoint = "ckpt/a.pt"        # relative to this file

    [topology]                      # min_persistence, relative, connectivity
    [verify]                        # enabled, fraction, n_points, steps, curve
    [hessian]                       # enabled, trace_samples, tol
    [compare]                       # force, order, scale

Entry and ``[defaults]`` keys are the options of ``losstopo landscape`` with ``_`` for ``-``
(``n_components``, ``allow_pickle``, ...), checked by that command's own parser: the same
choices, types and defaults.

Examples
--------
>>> cfg = parse_sweep({"entry": [{"model": "mlp"}]}, "s.toml")
>>> cfg.entries[0].label, cfg.topology["min_persistence"]
('mlp-1', 0.01)
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError

#: Landscape options a sweep sets itself, never from the file.
RESERVED = ("out", "workers", "quiet", "help")

#: The other tables and their keys with defaults.
SECTIONS: dict[str, dict[str, Any]] = {
    "topology": {"min_persistence": 0.01, "relative": True, "connectivity": "freudenthal"},
    "verify": {"enabled": True, "fraction": 0.5, "n_points": 21, "steps": 20, "curve": False},
    "hessian": {"enabled": True, "trace_samples": 20, "tol": 1e-3},
    "compare": {"force": False, "order": 1.0, "scale": "auto"},
}
CHOICES = {
    ("topology", "connectivity"): ("freudenthal", "cubical"),
    ("compare", "scale"): ("auto", "log", "linear"),
}
TOP_LEVEL = ("out", "workers", "defaults", "entry", *SECTIONS)
PATH_KEYS = ("checkpoint", "trajectory")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Entry:
    """One landscape of a sweep: its label, settings (landscape option -> value), the argv."""

    label: str
    settings: dict[str, Any]
    argv: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep file."""

    path: Path
    out: Path
    workers: int
    entries: tuple[Entry, ...]
    topology: dict[str, Any]
    verify: dict[str, Any]
    hessian: dict[str, Any]
    compare: dict[str, Any]


def landscape_options() -> dict[str, argparse.Action]:
    """``losstopo landscape``'s options by sweep key (``n_components`` for ``--n-components``)."""
    from .landscape import register

    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    land = sub.choices["landscape"]
    out = {}
    for action in land._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if not long or action.help == argparse.SUPPRESS:
            continue
        key = long[0][2:].replace("-", "_")
        if key not in RESERVED:
            out[key] = action
    return out


def _where(path: str, table: str) -> str:
    return f"in {table} of {path}" if table else f"at the top of {path}"


def _check_keys(d: Mapping[str, Any], valid: Any, table: str, path: str) -> None:
    for key in d:
        if key not in valid:
            raise InvalidParameterError(
                f"Unknown key {key!r} {_where(path, table)}; valid keys are "
                f"{', '.join(sorted(valid))}."
            )


def _typed(value: Any, kind: type, what: str) -> Any:
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise InvalidParameterError(
            f"{what} must be a {kind.__name__}; got {value!r} ({type(value).__name__})."
        )
    return value


def _option_value(key: str, value: Any, action: argparse.Action, what: str) -> list[str]:
    """The argv words for one landscape option, its type and choices checked."""
    flag = next(o for o in action.option_strings if o.startswith("--"))
    if isinstance(action, argparse._StoreTrueAction):
        return [flag] if _typed(value, bool, what) else []
    kind = action.type if action.type in (int, float) else str
    value = _typed(value, kind, what)  # type: ignore[arg-type]
    if action.choices is not None and value not in action.choices:
        raise InvalidParameterError(
            f"{what} must be one of {', '.join(map(str, action.choices))}; got {value!r}."
        )
    return [flag, str(value)]


def parse_sweep(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> SweepConfig:
    """Check a parsed sweep file and build each entry's ``landscape`` argv (without ``--out``)."""
    name = str(path)
    base = Path(path).resolve().parent
    _check_keys(doc, TOP_LEVEL, "", name)
    options = landscape_options()
    valid_entry = {"label", *options}
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise InvalidParameterError(f"[defaults] of {name} must be a table of landscape options.")
    _check_keys(defaults, options, "[defaults]", name)
    raw = doc.get("entry")
    if not isinstance(raw, list) or not raw or not all(isinstance(e, dict) for e in raw):
        raise InvalidParameterError(
            f"{name} has no [[entry]] tables; add one per landscape, each with at least "
            '`model = "..."` (a built-in name or module:function).'
        )
    entries, seen = [], set()
    for i, e in enumerate(raw, start=1):
        _check_keys(e, valid_entry, f"[[entry]] {i}", name)
        settings = {**defaults, **{k: v for k, v in e.items() if k != "label"}}
        if "model" not in settings:
            raise InvalidParameterError(
                f'[[entry]] {i} of {name} has no model; give `model = "mlp"` (a built-in) or '
                '`model = "package.module:function"`.'
            )
        label = e.get("label", f"{str(settings['model']).split(':')[-1]}-{i}")
        if not isinstance(label, str) or not LABEL.match(label):
            raise InvalidParameterError(
                f"The label {label!r} of [[entry]] {i} of {name} cannot name a file; use letters, "
                "digits, '.', '_' and '-' (starting with a letter or digit)."
            )
        if label in seen:
            raise InvalidParameterError(
                f"Two entries of {name} have the label {label!r}; give each entry its own label."
            )
        seen.add(label)
        argv: list[str] = []
        for key, value in settings.items():
            if key in PATH_KEYS and isinstance(value, str):
                value = str((base / value).resolve())
                settings[key] = value
            argv += _option_value(key, value, options[key], f"{key} of entry {label!r}")
        entries.append(Entry(label, settings, ["landscape", *argv]))
    sections = {}
    for sec, known in SECTIONS.items():
        given = doc.get(sec, {})
        if not isinstance(given, dict):
            raise InvalidParameterError(f"[{sec}] of {name} must be a table.")
        _check_keys(given, known, f"[{sec}]", name)
        merged = dict(known)
        for key, value in given.items():
            merged[key] = _typed(value, type(known[key]), f"{key} in [{sec}] of {name}")
            choices = CHOICES.get((sec, key))
            if choices and merged[key] not in choices:
                raise InvalidParameterError(
                    f"{key} in [{sec}] of {name} must be one of {', '.join(choices)}; got "
                    f"{merged[key]!r}."
                )
        sections[sec] = merged
    out = doc.get("out", Path(name).stem + "-out")
    workers = _typed(doc.get("workers", 1), int, f"workers in {name}")
    return SweepConfig(
        path=Path(path),
        out=base / _typed(out, str, f"out in {name}"),
        workers=workers,
        entries=tuple(entries),
        **sections,
    )


def load_sweep(path: str | os.PathLike[str]) -> SweepConfig:
    """Read and check a sweep file (TOML)."""
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise InvalidParameterError(f"No sweep file at {p}; pass the path of a TOML sweep file.")
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{p} is not valid TOML ({exc}); fix that line.") from exc
    return parse_sweep(doc, p)
