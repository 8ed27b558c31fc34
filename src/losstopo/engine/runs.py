"""Running a sequence of points in blocks: on one evaluator, or on several side by side.

A point that raises stops the run with a :class:`PointFailure` that carries the values of every
point before it, so nothing computed is lost. *Side by side*, each of ``k`` evaluators (private
copies of one model) takes the next block of points in turn on its own thread, with a share of
the torch threads. On a small model a point's operations are too short for torch's threads to
share well (they wait for each other at every operation); whole points on separate cores do not
wait, and each point's arithmetic is that of one copy alone, so the values are the same bit for
bit.

Examples
--------
>>> import numpy as np
>>> square = lambda s, e: np.arange(s, e, dtype=float)[:, None] ** 2
>>> side_by_side([square, square], n=5, n_columns=1, block=2).ravel().tolist()
[0.0, 1.0, 4.0, 9.0, 16.0]
>>> def fails_at_3(s, e):
...     if s <= 3 < e:
...         raise PointFailure(3 - s, ValueError("bad point"), square(s, 3))
...     return square(s, e)
>>> try:
...     side_by_side([fails_at_3, fails_at_3], n=6, n_columns=1, block=2)
... except PointFailure as exc:
...     print(exc.position, exc.done.ravel().tolist())
3 [0.0, 1.0, 4.0]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

#: ``run(start, end) -> values (end - start, n_columns)`` of the points ``start..end - 1``;
#: raises :class:`PointFailure` with the position inside the block.
BlockRun = Callable[[int, int], np.ndarray]


class PointFailure(Exception):
    """The model raised at a point; carries the results of the points before it."""

    def __init__(self, position: int, error: BaseException, done: np.ndarray):
        super().__init__(str(error))
        self.position = position
        self.error = error
        self.done = done


#: Most copies of the model evaluating side by side (one per torch thread up to this).
MAX_COPIES = 4

_POOLS: dict[int, ThreadPoolExecutor] = {}


def copies_for(bytes_per_copy: int | None, memory_cap: int) -> tuple[int, int]:
    """``(copies, torch threads each)`` for side-by-side evaluation: one copy per torch thread,
    at most :data:`MAX_COPIES`, when ``copies * bytes_per_copy`` fits in ``memory_cap``
    (``None``: not possible); ``(1, threads)`` otherwise.

    >>> copies, each = copies_for(10**6, 2**30)
    >>> copies == min(torch.get_num_threads(), MAX_COPIES), copies * each <= torch.get_num_threads()
    (True, True)
    >>> copies_for(None, 2**30)[0], copies_for(2**30, 2**30)[0]
    (1, 1)
    """
    threads = torch.get_num_threads()
    copies = min(threads, MAX_COPIES)
    if bytes_per_copy is None or copies < 2 or copies * bytes_per_copy > memory_cap:
        return 1, threads
    return copies, threads // copies


def _pool(n: int) -> ThreadPoolExecutor:
    """A pool of ``n`` threads kept for the process (starting threads costs ~0.1 ms a call)."""
    if n not in _POOLS:
        _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="losstopo-side-by-side")
    return _POOLS[n]


class Copies:
    """Copies of an evaluator for side-by-side evaluation, each built by ``build()`` once and
    brought to the strategy asked for (anything with ``strategy`` and ``prepare``)."""

    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._made: list[Any] = []

    def get(self, n: int, strategy: Mapping[str, Any]) -> list[Any]:
        """``n`` copies, prepared with ``strategy``."""
        while len(self._made) < n:
            self._made.append(self._build())
        for other in self._made[:n]:
            if other.strategy != strategy:
                other.prepare(0, strategy=strategy)
        return self._made[:n]


def in_blocks(run: BlockRun, n: int, n_columns: int, block: int) -> np.ndarray:
    """The values of points ``0..n - 1``, evaluated by ``run`` in consecutive blocks of ``block``.

    >>> in_blocks(lambda s, e: np.arange(s, e, dtype=float)[:, None], 5, 1, 2).ravel().tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    out = np.empty((n, n_columns))
    block = max(1, block)  # no points (an empty shard) is no work, not a zero step
    for start in range(0, n, block):
        end = min(n, start + block)
        try:
            out[start:end] = run(start, end)
        except PointFailure as exc:
            out[start : start + exc.position] = exc.done  # the block's points before it
            raise PointFailure(
                start + exc.position, exc.error, out[: start + exc.position].copy()
            ) from exc
    return out


def side_by_side(
    runs: Sequence[BlockRun], n: int, n_columns: int, block: int, threads_each: int = 1
) -> np.ndarray:
    """The values of points ``0..n - 1``: ``runs[0]`` on this thread and each other run on a
    thread of its own, each taking the next block of ``block`` points in turn, with
    ``threads_each`` torch threads each (the process's number is restored after).

    A failing point stops the others from taking new blocks; every block before it was taken
    earlier and is finished, so the :class:`PointFailure` raised carries all points before
    the first failing one.
    """
    out = np.empty((n, n_columns))
    block = max(1, block)
    lock = threading.Lock()
    taken = 0  # points handed out so far
    stop = False
    point_failures: list[PointFailure] = []  # positions counted from 0
    other_errors: list[BaseException] = []  # an interrupt, or an error outside any point

    def work(run: BlockRun) -> None:
        nonlocal taken, stop
        torch.set_num_threads(threads_each)
        while True:
            with lock:
                start = taken
                if stop or start >= n:
                    return
                taken = end = min(n, start + block)
            try:
                out[start:end] = run(start, end)
            except PointFailure as exc:
                out[start : start + exc.position] = exc.done
                point_failures.append(PointFailure(start + exc.position, exc.error, exc.done))
                stop = True
                return
            except BaseException as exc:  # noqa: BLE001 - re-raised after the others stop
                other_errors.append(exc)
                stop = True
                return

    threads_before = torch.get_num_threads()
    others = [_pool(len(runs) - 1).submit(work, run) for run in runs[1:]]
    try:
        work(runs[0])
    finally:
        stop = True  # the others take no new block
        for f in others:
            f.result()
        torch.set_num_threads(threads_before)
    if other_errors:
        raise other_errors[0]
    if point_failures:
        first = min(point_failures, key=lambda f: f.position)
        raise PointFailure(
            first.position, first.error, out[: first.position].copy()
        ) from first.error
    return out
