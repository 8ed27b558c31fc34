"""Exception classes and named validators.

Every user mistake raises a subclass of :class:`LosstopoError` (also a ``ValueError`` or
``TypeError``) whose message says what was wrong, what was expected and how to fix it.
The command line prints that one sentence and exits with status 2.

Examples
--------
>>> from losstopo.errors import validate_int
>>> validate_int(41, "resolution", low=2)
41
>>> validate_int(1, "resolution", low=2)
Traceback (most recent call last):
...
losstopo.errors.InvalidParameterError: The 'resolution' parameter must be an int >= 2. Got 1 instead.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class LosstopoError(Exception):
    """Base class of every error losstopo raises for a user mistake."""


class InvalidParameterError(LosstopoError, ValueError):
    """A parameter has a value outside what the function accepts."""


class InvalidTypeError(LosstopoError, TypeError):
    """A parameter has the wrong type."""


class ShapeMismatchError(LosstopoError, ValueError):
    """Arrays, tensors or checkpoints whose names or shapes do not agree."""


class NotFittedError(LosstopoError, ValueError, AttributeError):
    """A projector was used before ``fit``."""


class CheckpointError(LosstopoError, ValueError):
    """A checkpoint that cannot be loaded safely or does not match the model."""


class DataError(LosstopoError, ValueError):
    """Evaluation data that is empty or does not fit the loss."""


class StoreMismatchError(LosstopoError, ValueError):
    """A resumable store that was written by a different computation."""


class FieldFormatError(LosstopoError, ValueError):
    """A file that is not a valid losstopo HDF5 file."""


class EvaluationError(LosstopoError, RuntimeError):
    """The model raised while being evaluated at a grid point."""


class StoreBusyError(LosstopoError, ValueError):
    """An output that another running losstopo process is writing."""


class OutputWriteError(LosstopoError, OSError):
    """An output that could not be written (disk full, permissions); the previous file is kept."""


class NoInverseError(InvalidParameterError, NotImplementedError):
    """A projector that only embeds was asked to decode coordinates back to parameters."""


def validate_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise :class:`InvalidParameterError` naming ``name``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)  # numpy ints too
    if ok and low is not None and value < low:
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if not ok:
        if low is not None and high is not None:
            want = f"an int in the range [{low}, {high}]"
        elif low is not None:
            want = f"an int >= {low}"
        elif high is not None:
            want = f"an int <= {high}"
        else:
            want = "an int"
        raise InvalidParameterError(
            f"The '{name}' parameter must be {want}. Got {value!r} instead."
        )
    return int(value)


def validate_float(
    value: Any, name: str, *, low: float | None = None, strict_low: bool = False
) -> float:
    """Return ``value`` as a finite float, or raise :class:`InvalidParameterError`."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = float("nan")
    bad = not math.isfinite(out) or isinstance(value, bool)
    if not bad and low is not None:
        bad = out <= low if strict_low else out < low
    if bad:
        cmp = ">" if strict_low else ">="
        want = "a finite number" + (f" {cmp} {low}" if low is not None else "")
        raise InvalidParameterError(
            f"The '{name}' parameter must be {want}. Got {value!r} instead."
        )
    return out


def validate_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise :class:`InvalidParameterError`."""
    options = list(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise InvalidParameterError(
            f"The '{name}' parameter must be one of {listed}. Got {value!r} instead."
        )
    return value


def renamed_parameter(new: Any, old: Any, new_name: str, old_name: str, default: Any) -> Any:
    """The value of a renamed keyword: ``new``, or ``old`` (with a :class:`FutureWarning`).

    ``new`` is the new keyword's value (``default`` when not given), ``old`` the old keyword's
    (``None`` when not given). Giving both differently is an error.

    >>> renamed_parameter(2, None, "n_components", "dims", 2)
    2
    """
    if old is None:
        return new
    if new != default and new != old:
        raise InvalidParameterError(
            f"Got both '{new_name}'={new!r} and its old name '{old_name}'={old!r}; give only "
            f"'{new_name}'."
        )
    warnings.warn(
        f"'{old_name}' is renamed '{new_name}'; the old name will be removed.",
        FutureWarning,
        stacklevel=3,
    )
    return old


def validate_output_path(
    path: str | os.PathLike[str], name: str = "output", *, directory: bool = False
) -> Path:
    """Check that an output can be written at ``path``; return it as a :class:`~pathlib.Path`.

    With ``directory=False`` (a file), the parent directory must exist and be writable and
    ``path`` must not be a directory. With ``directory=True``, ``path`` itself must be an existing,
    writable directory. Writability is checked by creating (and removing) a file, which also holds
    for root, to whom permission bits mean little.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> validate_output_path(d + "/field.h5", "--out").name
    'field.h5'
    >>> validate_output_path(d + "/missing/field.h5", "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    losstopo.errors.InvalidParameterError: The directory .../missing for --out does not exist; ...
    """
    target = Path(path)
    where = target if directory else (target.parent if str(target.parent) else Path("."))
    if not where.exists():
        what = (
            f"The output directory {where} for {name}"
            if directory
            else f"The directory {where} for {name}"
        )
        raise InvalidParameterError(f"{what} does not exist; create it first (mkdir -p {where}).")
    if not where.is_dir():
        raise InvalidParameterError(
            f"The path {where} for {name} is a file, not a directory; pass a directory to write into."
        )
    if not directory and target.is_dir():
        raise InvalidParameterError(
            f"The path {target} for {name} is a directory; give a file name inside it."
        )
    if not _can_create_files_in(where):
        raise InvalidParameterError(
            f"The directory {where} for {name} is not writable; choose another directory or fix "
            "its permissions."
        )
    return target


def _can_create_files_in(path: Path) -> bool:
    """Whether a file can really be created in ``path``."""
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".losstopo-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True
