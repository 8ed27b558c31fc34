"""Local worker processes that shard a grid like ``torchrun`` would, without ``torchrun``.

Each worker runs the same ``losstopo`` command line (the ``argv`` given to
:func:`losstopo.cli.main`, not ``sys.argv``) with ``--workers 1`` and the options the parent
replaces, under the environment variables of a ``torch.distributed`` (gloo) process group.

The workers fail together: when one exits with an error the launcher gives the others
:data:`GRACE_SECONDS` to stop on their own (they normally raise the same error at their next
exchange), then ends them, and exits with the first failing rank's status and sentence. A
launcher stopped by ``SIGTERM``/``SIGINT``/``SIGHUP`` ends its workers first; a launcher killed
outright (``SIGKILL``) is noticed by each worker within a fraction of a second
(:func:`watch_parent`): the worker removes the launcher's temporary files and exits.

Examples
--------
>>> worker_argv(["landscape", "--workers=2", "--dims", "1"], {"--workers": "1"})
['landscape', '--n-components', '1', '--workers', '1']
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from .options import DEPRECATED_OPTIONS


def strip_option(argv: Sequence[str], name: str) -> list[str]:
    """``argv`` without option ``name`` and its value (``--name V`` or ``--name=V``)."""
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


def worker_argv(argv: Sequence[str], replace: Mapping[str, str]) -> list[str]:
    """``argv`` with the options in ``replace`` set to the given values, old spellings renamed."""
    out = [DEPRECATED_OPTIONS.get(a, a) for a in argv]
    for name, value in replace.items():
        out = strip_option(out, name) + [name, value]
    return out


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Seconds the other workers get to stop on their own after one failed.
GRACE_SECONDS = 5.0

#: Environment variables a worker reads: its launcher's pid and temporary directory.
PARENT_ENV, LAUNCH_DIR_ENV = "LOSSTOPO_PARENT_PID", "LOSSTOPO_LAUNCH_DIR"


def run_workers(
    argv: Sequence[str],
    workers: int,
    replace: Mapping[str, str],
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``python -m losstopo.cli ARGV`` in ``workers`` processes; the first failure's status.

    Rank 0 writes to this process's stderr; the other ranks' stderr is kept aside and shown only
    when one of them fails first. ``env``: extra environment variables of every worker; its
    ``LOSSTOPO_LAUNCH_DIR``, a temporary directory of the caller's, holds the workers' logs and
    is removed by the workers if this process is killed.
    """
    command = worker_argv(argv, {**replace, "--workers": "1"})
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    forward: threading.Thread | None = None
    given = (env or {}).get(LAUNCH_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="losstopo-workers-", dir=given) as logs:
        env = {LAUNCH_DIR_ENV: logs, **(env or {})}  # removed by the workers if we are killed
        try:
            for s in previous:
                signal.signal(s, stop)
            for rank in range(workers):
                worker_env = dict(
                    os.environ,
                    **(env or {}),
                    RANK=str(rank),
                    LOCAL_RANK=str(rank),
                    WORLD_SIZE=str(workers),
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=str(port),
                    LOSSTOPO_BACKEND="gloo",
                    OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
                    **{PARENT_ENV: str(os.getpid())},
                )
                log = Path(logs) / f"rank{rank}.err"
                if rank == 0:  # shown live, but its error sentence is held back (see below)
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "losstopo.cli", *command],
                        env=worker_env,
                        stderr=subprocess.PIPE,
                    )
                    assert proc.stderr is not None
                    forward = threading.Thread(
                        target=forward_stderr, args=(proc.stderr, log, argv), daemon=True
                    )
                    forward.start()
                else:
                    with open(log, "wb") as err:
                        proc = subprocess.Popen(
                            [sys.executable, "-m", "losstopo.cli", *command],
                            env=worker_env,
                            stderr=err,
                        )
                procs.append(proc)
            first = wait_failing_together(procs)
        finally:
            for p in procs:
                end(p)
            for s, handler in previous.items():
                signal.signal(s, handler)
        if forward is not None:
            forward.join(timeout=5)
        if first is None:
            return 0
        rank, status = first
        print(failure_sentence(argv, rank, status, Path(logs) / f"rank{rank}.err"), file=sys.stderr)
        return 2 if status in (1, 2) or status < 0 else status


def wait_failing_together(
    procs: Sequence[subprocess.Popen[bytes]], grace: float = GRACE_SECONDS
) -> tuple[int, int] | None:
    """Wait for ``procs``; after the first failure, give the rest ``grace`` seconds, then end them.

    Returns ``(rank, status)`` of the first process that failed, or ``None`` if none did.
    """
    first: tuple[int, int] | None = None
    deadline = float("inf")
    while [p.poll() for p in procs].count(None):
        if first is None:
            for rank, p in enumerate(procs):
                if p.returncode not in (None, 0):
                    first, deadline = (rank, p.returncode), time.monotonic() + grace
                    break
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for p in procs:
        end(p)
    if first is None:
        failed = [(r, p.returncode) for r, p in enumerate(procs) if p.returncode != 0]
        first = failed[0] if failed else None
    return first


def end(proc: subprocess.Popen[bytes], timeout: float = 3.0) -> None:
    """Stop ``proc`` if it still runs: ``SIGTERM``, then ``SIGKILL`` after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def failure_sentence(argv: Sequence[str], rank: int, status: int, log: Path) -> str:
    """The failing worker's own error sentence, or one saying how it ended."""
    command = argv[0] if argv else "landscape"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    said = [line for line in lines if line.startswith(f"losstopo {command}: error:")]
    if said:
        return said[-1]
    how = (
        f"was killed by signal {-status} ({signal.Signals(-status).name})"
        if status < 0
        else f"exited with status {status}"
    )
    tail = f": {lines[-1].strip()}" if lines else ""
    return (
        f"losstopo {command}: error: worker rank {rank} {how}{tail}; the other workers were "
        "stopped. Results written so far are kept; rerun to resume."
    )


def error_prefix(argv: Sequence[str]) -> bytes:
    """How the command's error sentence starts (``losstopo landscape: error:``)."""
    return f"losstopo {argv[0] if argv else 'landscape'}: error:".encode()


def forward_stderr(pipe: Any, log: Path, argv: Sequence[str]) -> None:
    """Copy rank 0's stderr to ours as it comes (progress bars included) and to ``log``.

    Lines holding the command's error sentence go to ``log`` only: the launcher prints the
    sentence of the first rank that failed, once.
    """
    prefix = error_prefix(argv)
    out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
    buffer = b""
    with open(log, "wb") as keep:
        while chunk := pipe.read1(4096) if hasattr(pipe, "read1") else pipe.read(4096):
            keep.write(chunk)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            shown = b"".join(line + b"\n" for line in lines if not line.startswith(prefix))
            if b"\r" in buffer:  # a progress bar redrawn in place: show it now
                cut = buffer.rindex(b"\r") + 1
                shown, buffer = shown + buffer[:cut], buffer[cut:]
            if shown and out is not None:
                out.write(shown)
                out.flush()
        if buffer and out is not None and not buffer.startswith(prefix):
            out.write(buffer)
            out.flush()


def watch_parent() -> None:
    """In a worker: exit (removing the launcher's temporary directory) as soon as the launcher dies.

    Does nothing outside a worker started by :func:`run_workers`.
    """
    raw = os.environ.get(PARENT_ENV)
    if not raw:
        return
    parent = int(raw)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        launch_dir = os.environ.get(LAUNCH_DIR_ENV)
        if launch_dir:
            shutil.rmtree(launch_dir, ignore_errors=True)
        os._exit(143)

    threading.Thread(target=watch, name="losstopo-watch-launcher", daemon=True).start()
