"""Local worker processes that shard a grid like ``torchrun`` would, without ``torchrun``.

Each worker runs the same ``losstopo`` command line (the ``argv`` given to
:func:`losstopo.cli.main`, not ``sys.argv``) with ``--workers 1`` and the options the parent
replaces, under the environment variables of a ``torch.distributed`` (gloo) process group.

Examples
--------
>>> worker_argv(["landscape", "--workers=2", "--dims", "1"], {"--workers": "1"})
['landscape', '--n-components', '1', '--workers', '1']
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence

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


def run_workers(argv: Sequence[str], workers: int, replace: Mapping[str, str]) -> int:
    """Run ``python -m losstopo.cli ARGV`` in ``workers`` processes; the worst exit status."""
    command = worker_argv(argv, {**replace, "--workers": "1"})
    port = free_port()
    procs = []
    for rank in range(workers):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(workers),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            LOSSTOPO_BACKEND="gloo",
            OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        )
        procs.append(subprocess.Popen([sys.executable, "-m", "losstopo.cli", *command], env=env))
    return max(p.wait() for p in procs)
