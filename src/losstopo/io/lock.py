"""One writer per output file: an OS-level lock on a sidecar ``<file>.lock``.

A writer (an evaluation store for the whole run, a one-off rewrite for the moment it takes)
holds ``fcntl.flock`` on ``<file>.lock`` next to the file. The kernel releases it when the process
ends, however it ends, so a ``kill -9`` never leaves a stale lock; the sidecar holds the pid, host
and start time of the writer, so a second writer is refused with one sentence naming it.
Readers never take the lock: every write is a rename of a complete temporary file.

Holding the lock also makes any temporary file left next to the target by a killed writer
(``.<file>.XXXXXXXX.tmp``) safe to remove: the lock's holder removes them when it takes it.

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "run.h5")
>>> with writer_lock(path):
...     os.path.exists(path + ".lock")
True
>>> os.path.exists(path + ".lock")
False
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import StoreBusyError

__all__ = ["WriterLock", "lock_holder", "remove_stale_temporaries", "writer_lock"]

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, a single writer is the user's care
    fcntl = None  # type: ignore[assignment]

#: Locks this process holds, by resolved target path, with their re-entry counts.
_HELD: dict[str, tuple[WriterLock, int]] = {}


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar lock file of ``path``: ``<path>.lock`` in the same directory."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def lock_holder(path: str | os.PathLike[str]) -> dict[str, object] | None:
    """What the sidecar of ``path`` says about its writer (pid, host, started), if anything."""
    try:
        text = lock_path(path).read_text()
        info = json.loads(text)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe(info: dict[str, object] | None) -> str:
    if not info:
        return "another process"
    started = info.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(started)))
        if isinstance(started, (int, float))
        else "an unknown time"
    )
    return f"pid {info.get('pid')} on {info.get('host')}, started {when}"


class WriterLock:
    """The exclusive writer lock of one output file (see the module's description)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.sidecar = lock_path(self.path)
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock at once, or raise :class:`StoreBusyError` naming the writer that holds it."""
        if fcntl is None:  # pragma: no cover
            return
        while True:
            fd = os.open(self.sidecar, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StoreBusyError(
                    f"{self.path} is being written by another losstopo run "
                    f"({_describe(lock_holder(self.path))}); wait for it to finish, or choose "
                    "another output path."
                ) from None
            except BaseException:
                os.close(fd)
                raise
            # The holder before us may have removed the sidecar after we opened it: then our
            # lock is on a file nobody else will see; start again on the current one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.sidecar).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": " ".join(sys.argv[:1] + sys.argv[1:8]),
        }
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        remove_stale_temporaries(self.path)

    def release(self) -> None:
        """Remove the sidecar and let the lock go."""
        if self.fd is None:
            return
        try:
            os.unlink(self.sidecar)
        except OSError:
            pass
        os.close(self.fd)  # closing the descriptor releases the flock
        self.fd = None


@contextmanager
def writer_lock(path: str | os.PathLike[str]) -> Iterator[WriterLock]:
    """Hold the writer lock of ``path`` for the ``with`` block; re-entrant within a process."""
    key = str(Path(path).resolve())
    if key in _HELD:
        lock, count = _HELD[key]
        _HELD[key] = (lock, count + 1)
        try:
            yield lock
        finally:
            lock, count = _HELD[key]
            _HELD[key] = (lock, count - 1)
        return
    lock = WriterLock(path)
    lock.acquire()
    _HELD[key] = (lock, 1)
    try:
        yield lock
    finally:
        _HELD.pop(key, None)
        lock.release()


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove ``.<name>.XXXXXXXX.tmp`` files a killed writer of ``path`` left; call under the lock."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp$")
    removed: list[Path] = []
    parent = path.resolve().parent
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if pattern.match(entry.name):
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:
                pass
    return removed
