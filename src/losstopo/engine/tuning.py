"""Choosing the evaluation batch size (and whether to use a fast path) by timing whole points.

Each configuration is timed in a steady loop (the first pass after a batch-size change is several
times slower than the next ones and is not timed). For each configuration, batch sizes go from
large to small, stopping after two in a row slower than that configuration's best; the fastest
overall wins, and a larger batch wins ties within 2 %.

Examples
--------
>>> batch_size_candidates(1797)
[1797, 1024, 512, 256, 128]
>>> costs = {(1797, False): 3.0, (1024, False): 1.0, (512, False): 1.01, (256, False): 2.0}
>>> fastest([1797, 1024, 512, 256, 128], [False], lambda bs, c: (costs.get((bs, c), 9.0), c))
(1024, False)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

#: Grids with fewer points than this skip the batch-size measurement (it would cost more than it saves).
TUNE_MIN_POINTS = 50

#: Batch sizes tried (capped at the number of samples), largest first.
BATCH_SIZES = (2048, 1024, 512, 256, 128)


def batch_size_candidates(n_samples: int) -> list[int]:
    """The batch sizes to time for ``n_samples`` samples, largest first."""
    return sorted({min(n_samples, b) for b in (n_samples, *BATCH_SIZES)}, reverse=True)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def steady_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """The best of ``repeats`` timed calls after one untimed warm-up call."""
    fn()  # warm-up, not timed
    return min(timed(fn) for _ in range(repeats))


def fastest(
    candidates: Sequence[int],
    configs: Sequence[Any],
    measure: Callable[[int, Any], tuple[float, Any] | None],
) -> tuple[int, Any]:
    """The ``(batch_size, state)`` of the fastest configuration.

    ``measure(batch_size, config)`` returns ``(seconds, state)``, or ``None`` when the
    configuration cannot run at that batch size (then smaller ones are not tried either).
    The state of the winner is returned with its batch size (``None`` if nothing ran).
    """
    best_time, best_bs, best_state = float("inf"), candidates[0], None
    for config in configs:
        config_best, worse = float("inf"), 0
        for bs in candidates:
            result = measure(bs, config)
            if result is None:
                break  # e.g. the first-layer split does not fit in memory at this size
            elapsed, state = result
            if elapsed < config_best * 0.98:
                config_best, worse = elapsed, 0
                if elapsed < best_time * 0.98:
                    best_time, best_bs, best_state = elapsed, bs, state
            else:
                worse += 1
                if worse == 2:
                    break
    return best_bs, best_state
