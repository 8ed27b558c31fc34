"""Replacing a file atomically: write a temporary file next to it, ``fsync``, rename it over.

Used by every losstopo writer (HDF5 fields and stores, VTK and PLY exports, JSON and HTML
reports), so a crash, a ``kill -9`` or a full disk leaves either the previous file or the new one,
never a truncated one, and no temporary file behind (a ``kill -9`` can leave one; the next writer
of that file removes it, see :mod:`losstopo.io.lock`).

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
>>> write_replacing(path, lambda tmp: tmp.write_text("hello"))
>>> open(path).read(), sorted(os.listdir(os.path.dirname(path)))
('hello', ['note.txt'])
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError, OutputWriteError

__all__ = ["KINDS", "file_kind", "new_file_mode", "refuse_clobbering", "write_replacing"]


def new_file_mode() -> int:
    """The permission bits a new file gets under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_replacing(
    path: str | os.PathLike[str], write: Callable[[Path], Any], *, suffix: str = ".tmp"
) -> None:
    """Call ``write(tmp)`` on a temporary path next to ``path``, then rename it over ``path``.

    The new file keeps the mode of the file it replaces, or follows the umask when there was none.
    An ``OSError`` while writing (a full disk, a quota) becomes one
    :class:`~losstopo.errors.OutputWriteError` sentence; the temporary file is removed whatever
    happens. ``suffix``: how the temporary file's name ends (a writer that goes by the extension
    needs its own, e.g. ``".tmp.ply"``).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.resolve().parent)
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = new_file_mode()
        write(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        if isinstance(exc, OutputWriteError):
            raise
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc)
        reason = "the disk is full" if full else None
        reason = reason or (exc.strerror or str(exc) or type(exc).__name__)
        raise OutputWriteError(
            f"Could not write {path}: {reason}; the previous version (if any) is kept "
            "unchanged. Free some space or choose another location, then rerun."
        ) from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass


#: The kinds of file losstopo writes, as :func:`file_kind` names them.
KINDS = ("hdf5", "json", "html", "text")


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """``"hdf5"``, ``"json"``, ``"html"``, ``"text"`` from a file's first bytes; ``None`` if empty.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "x")
    >>> _ = open(p, "w").write(' {"a": 1}')
    >>> file_kind(p)
    'json'
    """
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return None
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    text = head.lstrip().lower()
    if text[:1] in (b"{", b"["):
        return "json"
    if text.startswith((b"<!doctype html", b"<html")):
        return "html"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text"


def refuse_clobbering(
    target: str | os.PathLike[str],
    kind: str,
    name: str,
    inputs: tuple[str | os.PathLike[str], ...] = (),
) -> Path:
    """Refuse an output that is one of the ``inputs``, or an existing file of another kind.

    ``kind``: what is about to be written there (``"json"``, ``"html"``, ...); an existing file
    of that kind (or an empty one) may be replaced.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "field.h5")
    >>> refuse_clobbering(p, "json", "--json", inputs=(p,))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    losstopo.errors.InvalidParameterError: --json .../field.h5 is also the input file; ...
    """
    target = Path(target)
    for given in inputs:
        same = Path(given).resolve() == target.resolve()
        if not same and target.exists() and Path(given).exists():
            same = os.path.samefile(given, target)
        if same:
            raise InvalidParameterError(
                f"{name} {target} is also the input file; writing there would replace it. "
                f"Choose another {name} path."
            )
    if target.is_file():
        found = file_kind(target)
        if found not in (None, kind):
            raise InvalidParameterError(
                f"{name} {target} exists and holds {found} data, not {kind}; losstopo does not "
                f"replace a file of another kind. Choose another {name} path (or remove it)."
            )
    return target
