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

from ..errors import OutputWriteError

__all__ = ["new_file_mode", "write_replacing"]


def new_file_mode() -> int:
    """The permission bits a new file gets under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_replacing(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` on a temporary path next to ``path``, then rename it over ``path``.

    The new file keeps the mode of the file it replaces, or follows the umask when there was none.
    An ``OSError`` while writing (a full disk, a quota) becomes one
    :class:`~losstopo.errors.OutputWriteError` sentence; the temporary file is removed whatever
    happens.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.resolve().parent)
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
