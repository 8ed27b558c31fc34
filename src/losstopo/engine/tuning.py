"""Choosing the evaluation batch size (and whether to use the first-layer split) by timing points.

Timings are taken on a machine that may be busy with other work, so every choice rests on
minima of repeated, interleaved measurements (other load only ever adds time, so the minimum of
several short trials estimates the cost of a configuration itself):

0. *warm-up*: the first candidate evaluates points untimed until three in a row take times
   within 10 % of each other, for :data:`WARM_UP` seconds at most, every other candidate until
   two do, for a quarter of that at most (one point at least: the first passes of a strategy
   allocate its buffers, and in a fresh process they alternate between fast and several times
   slower);
1. *screening*: every candidate (e.g. ``(batch_size, split, channels_last)``) times one point;
   a point faster than :data:`MIN_TIMING` is timed in a block of points lasting about that
   long instead (a timer tick or a scheduler hiccup weighs less on a block), whose mean per
   point counts. Batch sizes are screened largest first, and a kind's smaller batch sizes are
   skipped once one of them is :data:`PRUNE` times slower than a larger one;
2. *rounds*: the three fastest, the fastest of every *kind* (a candidate but its batch size,
   e.g. split or not: one kind measured cold must not lose by it), every kind at the
   reference's batch size, and the *reference* (the largest batch, no split: what a plain loop
   does) are measured again in rotating order (the faster of two blocks each time for points
   faster than :data:`MIN_TIMING`, one point otherwise), round after round, until the rounds or the time
   budget run out (2 % of the estimated time of the whole grid; one round at least);
3. the candidate with the smallest minimum wins; within 2 % of it the reference wins, then the
   larger batch, so noise never trades the plain configuration for a no better one.

Examples
--------
>>> batch_size_candidates(1797)
[1797, 1024, 512, 256]
>>> costs = {(1797, False): 3.0, (1024, False): 1.0, (512, False): 1.01, (256, False): 2.0}
>>> cands = [(b, False) for b in (1797, 1024, 512, 256)]
>>> choose(cands, lambda c: (lambda: costs[c]), n_points=100, clock=fake_clock(costs))
(1024, False)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

#: Grids with fewer points than this skip the batch-size measurement (it would cost more than it saves).
TUNE_MIN_POINTS = 50

#: Batch sizes tried (capped at the number of samples), largest first.
BATCH_SIZES = (2048, 1024, 512, 256)

#: Data sets larger than this are never evaluated in one batch.
MAX_WHOLE_BATCH = 4096

#: A point faster than this (seconds) is timed in blocks of repeated points lasting about this long.
MIN_TIMING = 0.003

#: Seconds of evaluation before the first timing (at least two points): the process's threads
#: and the machine's idle cores wake up, which otherwise slows the first candidates several times.
WARM_UP = 0.04

#: Candidates are screened largest batch first; a batch size slower than this times the best
#: larger one of its kind ends the screening of that kind's smaller batch sizes.
PRUNE = 1.1

#: Points faster than this (seconds, at the process's threads) run on copies side by side when
#: they can: their operations are too short for torch's threads to share well.
SIDE_BY_SIDE_BELOW = 0.01

C = TypeVar("C", bound=Hashable)


def batch_size_candidates(n_samples: int) -> list[int]:
    """The batch sizes to time for ``n_samples`` samples, largest first."""
    whole = (n_samples,) if n_samples <= MAX_WHOLE_BATCH else ()
    return sorted({min(n_samples, b) for b in (*whole, *BATCH_SIZES)}, reverse=True)


def fake_clock(costs: dict[Any, float]) -> Callable[[Callable[[], object]], float]:
    """A clock for examples and tests: the cost a call returns is its time."""

    def clock(fn: Callable[[], object]) -> float:
        return float(fn())  # type: ignore[arg-type]

    return clock


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def choose(
    candidates: Sequence[C],
    setup: Callable[[C], Callable[[], object] | None],
    n_points: int,
    *,
    reference: C | None = None,
    budget: float = 0.02,
    max_rounds: int = 4,
    finalists: int = 3,
    clock: Callable[[Callable[[], object]], float] = timed,
    cut: float | None = None,
) -> C:
    """The fastest of ``candidates`` (``reference``: the plain one, default the first).

    ``setup(candidate)`` configures the evaluator and returns a function evaluating one point,
    or ``None`` when the candidate cannot run (e.g. the split does not fit in memory).
    ``budget``: the fraction of the estimated time of ``n_points`` points the rounds may take;
    ``cut``: when given, a candidate (not the reference) screened more than ``cut`` times slower
    than the fastest is not measured again (for a choice where noise is not the question, as the
    thread count on a quiet machine).
    """
    ref = candidates[0] if reference is None else reference
    best: dict[C, float] = {}
    runners: dict[C, Callable[[], object]] = {}

    def pair(c: C, twice: bool) -> None:
        fn = runners[c]
        t = clock(fn)
        reps = min(16, int(MIN_TIMING / t)) if t > 0 else 1

        def block() -> float:
            return sum(clock(fn) for _ in range(reps)) / reps

        if reps > 1:
            t = block()
        if twice and reps > 1:
            t = min(t, block())
        best[c] = min(best.get(c, float("inf")), t)

    warmed = False
    kind_best: dict[Any, float] = {}
    done: set[Any] = set()  # kinds whose smaller batch sizes are not worth screening
    for c in [ref, *(c for c in candidates if c != ref)]:  # warm up on the plain configuration
        if _kind(c) in done and c != ref:
            continue
        fn = setup(c)
        if fn is None:
            continue
        # warm-up: the first calls of a strategy can be several times slower (buffers, caches);
        # the first candidate also wakes the machine's idle cores
        if warmed:
            _warm_up(fn, clock, WARM_UP / 4, settle=2)
        else:
            _warm_up(fn, clock, WARM_UP, settle=3)
        warmed = True
        runners[c] = fn
        pair(c, twice=False)
        kind = _kind(c)
        if best[c] > PRUNE * kind_best.get(kind, best[c]):
            done.add(kind)  # slower than a larger batch of its kind: smaller ones will be too
        kind_best[kind] = min(kind_best.get(kind, best[c]), best[c])
    if not best:
        return ref
    order = sorted(best, key=best.__getitem__)
    final = order[:finalists]
    for c in [*order, ref]:  # the fastest of each kind (order is fastest first), the reference
        kinds = {_kind(f) for f in final}
        if c in best and c not in final and (_kind(c) not in kinds or c == ref):
            final.append(c)
    # and every kind at the reference's batch size (the plain loop's, measured cold first)
    final += [c for c in order if c not in final and _size(c) == _size(ref)]
    if cut is not None:  # far slower than the fastest at screening: not measured again
        final = [c for c in final if c == ref or best[c] <= cut * min(best.values())]
    if final == [ref]:
        return ref  # nothing left to compare it with
    allowed = budget * n_points * min(best.values())
    spent = 0.0
    for r in range(max_rounds):
        if spent > allowed and r >= 1:
            break
        rotated = final[r % len(final) :] + final[: r % len(final)]
        for c in rotated:
            setup(c)
            t0 = time.perf_counter()
            pair(c, twice=True)
            spent += time.perf_counter() - t0
    fastest = min(best.values())
    close = [c for c in best if best[c] <= fastest * 1.02]
    if ref in close:
        return ref
    return max(close, key=lambda c: (_size(c), -best[c]))


def _warm_up(
    fn: Callable[[], object],
    clock: Callable[[Callable[[], object]], float],
    cap: float,
    settle: int,
) -> None:
    """Untimed calls of ``fn`` until the last ``settle`` calls took times within 10 % of each
    other (a warm process: a few calls) or ``cap`` seconds have passed (a cold one, whose calls
    alternate between fast and several times slower); one call at least."""
    times: list[float] = []
    while not times or sum(times) < cap:
        times.append(clock(fn))
        last = times[-settle:]
        if len(last) == settle and max(last) <= 1.1 * min(last):
            return


def _kind(candidate: Any) -> Any:
    """A ``(batch_size, ...)`` candidate without its batch size (any other: itself)."""
    return candidate[1:] if isinstance(candidate, tuple) else candidate


def _size(candidate: Any) -> float:
    """The batch size of a ``(batch_size, ...)`` candidate (larger wins ties)."""
    if isinstance(candidate, tuple) and candidate and isinstance(candidate[0], (int, float)):
        return float(candidate[0])
    return 0.0


def choose_threads(run: Callable[[], object], n_points: int) -> int | None:
    """The number of torch threads to evaluate with: ``None`` (as they are) or 1, whichever
    evaluates a point (``run``) faster in interleaved trials. On a machine busy with other work,
    threads wait for each other at every parallel operation, and one thread can be several
    times faster; on a quiet one, the threads win."""
    import torch

    threads = torch.get_num_threads()
    if threads == 1:
        return None

    def use(k: int) -> Callable[[], object]:
        torch.set_num_threads(k)
        return run

    try:
        best = choose(
            [threads, 1], use, n_points, reference=threads, budget=0.01, finalists=2, cut=1.5
        )
    finally:
        torch.set_num_threads(threads)
    return None if best == threads else best


def choose_parallelism(
    run: Callable[[], object], n_points: int, side_by_side: tuple[int, int] = (1, 0)
) -> tuple[int | None, int]:
    """``(threads, copies)`` to evaluate with: ``side_by_side`` (``(copies, threads each)``
    possible, e.g. from :func:`.runs.copies_for`) when there are several copies and a point
    (``run``, the fastest of three) takes less than :data:`SIDE_BY_SIDE_BELOW`; else one copy
    with :func:`choose_threads`.

    Copies side by side are not timed against the threads: the first points after a switch
    between the two run slowly (idle threads still spin), so short trials misjudge them. Over
    whole grids on a 2-core machine, two copies took 0.88x (MLP, 1 ms points) and 0.91x (a
    small CNN, 10 ms) of the time of the threads, and 0.44x on a busy machine, while ResNet-20
    on the digits (50 ms points) took 1.08x (``docs/benchmarks.md``).

    >>> choose_parallelism(lambda: None, n_points=100, side_by_side=(2, 1))
    (1, 2)
    """
    copies, each = side_by_side
    if copies > 1 and min(timed(run) for _ in range(3)) < SIDE_BY_SIDE_BELOW:
        return each, copies
    return choose_threads(run, n_points), 1
