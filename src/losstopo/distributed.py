"""Sharding grid points across processes with ``torch.distributed`` (torchrun or ``--workers``).

Under ``torchrun --nproc-per-node N`` (or ``losstopo landscape --workers N``) every rank evaluates
its share of each chunk; rank 0 gathers the results, writes the store, and every rank returns the
same field. Each rank evaluates on :func:`losstopo.engine.default_device` (its local GPU).

Ranks fail together: an error on any rank (a refused store on rank 0, a model raising, a full
disk) travels to every rank at the next exchange (:func:`run_on_rank0`, :func:`raise_first`),
and every rank raises the first failing rank's error. Collectives time out after
``LOSSTOPO_COLLECTIVE_TIMEOUT`` seconds (default 300), so a rank that died silently stops the
others within that time instead of the 30 minutes of ``torch.distributed``'s default.
"""

from __future__ import annotations

import atexit
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from .engine import PointFailure
from .errors import EvaluationError, InvalidParameterError, LosstopoError

if TYPE_CHECKING:
    from .engine import Evaluator
    from .store import PointStore

T = TypeVar("T")

#: A store is written at least this often (seconds), whatever the chunk size.
FLUSH_SECONDS = 30.0

#: Set when the ranks failed together: leaving then skips the final barrier (a rank may be gone).
_failed = False


def collective_timeout() -> float:
    """Seconds a collective may wait for the other ranks (``LOSSTOPO_COLLECTIVE_TIMEOUT``)."""
    raw = os.environ.get("LOSSTOPO_COLLECTIVE_TIMEOUT", "300")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise InvalidParameterError(
            f"LOSSTOPO_COLLECTIVE_TIMEOUT must be a positive number of seconds; got {raw!r}."
        )
    return seconds


def world() -> tuple[int, int]:
    """``(rank, world_size)``, initialising the process group from torchrun's variables if needed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and dist.is_available() and "MASTER_ADDR" in os.environ:
        backend = (
            "nccl"
            if torch.cuda.is_available() and os.environ.get("LOSSTOPO_BACKEND") != "gloo"
            else "gloo"
        )
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=collective_timeout()))
        atexit.register(_shutdown)
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def broadcast(obj: Any, size: int) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if size == 1:
        return obj
    box = [obj]
    with _contact():
        dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, size: int) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if size == 1:
        return [obj]
    out: list[Any] = [None] * size
    with _contact():
        dist.all_gather_object(out, obj)
    return out


@contextmanager
def _contact() -> Iterator[None]:
    """A collective that fails (a rank died, the timeout passed) as one sentence."""
    try:
        yield
    except RuntimeError as exc:
        _mark_failed()
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EvaluationError(
            f"Worker rank {dist.get_rank()} lost contact with the other workers ({first}); one "
            "of them failed or was stopped. Results written so far are kept; rerun to resume."
        ) from exc


def _shutdown() -> None:
    """Leave the process group cleanly at exit (a rank exiting with it open can abort)."""
    if dist.is_available() and dist.is_initialized():
        try:
            if not _failed:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def _mark_failed() -> None:
    global _failed
    _failed = True


def portable(error: BaseException, rank: int) -> BaseException:
    """``error`` as it can travel to the other ranks: a losstopo error as is, anything else named."""
    if isinstance(error, LosstopoError):
        try:
            pickle.loads(pickle.dumps(error))
            return error
        except Exception:  # noqa: BLE001 - fall back to the sentence
            pass
    return EvaluationError(f"Worker rank {rank} failed: {type(error).__name__}: {error}")


def raise_first(errors: list[BaseException | None], own: BaseException | None, rank: int) -> None:
    """Raise the first of the ranks' ``errors`` (gathered, in rank order), if any.

    ``own`` is this rank's original error: raised as it is (with its traceback) when it is the
    first, so a single process sees exactly what it raised.
    """
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if not failed:
        return
    if len(errors) > 1:
        _mark_failed()
    first_rank, first = failed[0]
    if own is not None and first_rank == rank:
        raise own
    raise first


def run_on_rank0(fn: Callable[[], T], rank: int, size: int) -> T:
    """``fn()`` computed on rank 0 and given to every rank, or its error raised on every rank."""
    if size == 1:
        return fn()
    outcome: tuple[bool, Any] = (True, None)
    own: BaseException | None = None
    if rank == 0:
        try:
            outcome = (True, fn())
        except Exception as exc:  # noqa: BLE001 - raised on every rank below
            own, outcome = exc, (False, portable(exc, 0))
    ok, value = broadcast(outcome, size)
    if ok:
        return value  # type: ignore[no-any-return]
    _mark_failed()
    raise own if own is not None else value


def evaluate_chunks(
    evaluator: Evaluator,
    pstore: PointStore,
    points: np.ndarray,
    missing: np.ndarray,
    names: Sequence[str],
    *,
    rank: int,
    size: int,
    chunk: int,
    mode: str,
    vmap_size: int,
    attrs: dict[str, Any],
    store: Any,
    bar: Any,
) -> None:
    """Evaluate the ``missing`` flat indices of ``points`` in blocks of ``chunk`` points per rank.

    After each block every rank has every rank's results (and errors) and rank 0 has written the
    store; the first failure, on any rank, is raised on all of them. A block that takes longer
    than :data:`FLUSH_SECONDS` makes the next ones smaller, so the store is written (and the
    progress bar moves) at least that often.
    """
    per_rank, pos = chunk, 0
    n_columns = evaluator.reduction.n_columns
    while pos < len(missing):
        block = missing[pos : pos + per_rank * size]
        pos += len(block)
        mine = block[rank::size]
        failure: tuple[int, str] | None = None
        error: BaseException | None = None
        t0 = time.monotonic()
        try:
            results = evaluator.evaluate(points[mine], mode=mode, vmap_size=vmap_size)
        except PointFailure as exc:
            results = exc.done
            failure = (int(mine[exc.position]), f"{type(exc.error).__name__}: {exc.error}")
            mine = mine[: len(results)]
        except Exception as exc:  # noqa: BLE001 - shared with every rank below
            results, mine, error = np.empty((0, n_columns)), mine[:0], exc
        elapsed = time.monotonic() - t0
        shared = None if error is None else portable(error, rank)
        gathered = gather((mine, results, failure, shared, elapsed), size)
        raise_first([g[3] for g in gathered], error, rank)
        for idx, res, *_ in gathered:
            if len(idx):
                pstore.put(np.asarray(idx), np.asarray(res))
        run_on_rank0(lambda: pstore.flush(attrs), rank, size)
        failures = [g[2] for g in gathered if g[2] is not None]
        if failures:
            flat, message = failures[0]
            coords = ", ".join(f"{n}={c:.6g}" for n, c in zip(names, points[flat], strict=True))
            kept = (
                f"; the {int(pstore.done.sum())} points computed so far are saved in {store}"
                if store
                else ""
            )
            if size > 1:
                _mark_failed()
            raise EvaluationError(
                f"The model raised at grid point {flat} ({coords}): {message}{kept}. Fix the "
                "model (or the data) and rerun to resume."
            )
        slowest = max(g[4] for g in gathered)  # the same on every rank
        if slowest > FLUSH_SECONDS:
            per_rank = max(1, int(per_rank * FLUSH_SECONDS / slowest))
        if bar is not None:
            bar.update(len(block))
