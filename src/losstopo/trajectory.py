"""Training trajectories: checkpoints as rows of a matrix, with step numbers and run ids.

Examples
--------
>>> import torch
>>> from losstopo import train
>>> from losstopo.datasets import synthetic_classification
>>> from losstopo.models import MLP
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = MLP(16, (8,), 3)
>>> traj = train(model, synthetic_classification(), epochs=3, seed=0, progress=False)
>>> traj.points.shape, traj.steps.tolist()
((4, 163), [0, 1, 2, 3])
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .errors import DataError, InvalidParameterError, ShapeMismatchError, validate_int
from .space import ParameterSpace


@dataclass(frozen=True)
class Trajectory:
    """Checkpoints of one or several training runs as rows of a matrix.

    Attributes
    ----------
    points : ndarray (n_checkpoints, n_params), float32
        Flat parameter vectors in :class:`ParameterSpace` order.
    steps : ndarray (n_checkpoints,), int64
        Step (or epoch) number of each checkpoint.
    runs : ndarray (n_checkpoints,), str
        Run (model) id of each row: one trajectory can hold several runs (a global landscape).
    names, shapes : tuples
        The parameter space the rows belong to.
    metrics : dict of str to ndarray
        Per-checkpoint quantities recorded during training (e.g. ``"loss"``).
    """

    points: np.ndarray
    steps: np.ndarray
    runs: np.ndarray
    names: tuple[str, ...] = ()
    shapes: tuple[tuple[int, ...], ...] = ()
    metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points)
        if pts.dtype not in (np.float32, np.float64):
            pts = pts.astype(np.float32)
        if pts.ndim != 2:
            raise ShapeMismatchError(f"Trajectory points must be 2-D; got shape {pts.shape}.")
        steps = np.asarray(self.steps, dtype=np.int64).ravel()
        runs = np.asarray(self.runs).astype(str).ravel()
        if steps.size != pts.shape[0] or runs.size != pts.shape[0]:
            raise ShapeMismatchError(
                f"A trajectory of {pts.shape[0]} checkpoints needs as many steps and run ids; got "
                f"{steps.size} and {runs.size}."
            )
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "runs", runs)
        object.__setattr__(
            self, "metrics", {k: np.asarray(v, dtype=np.float64) for k, v in self.metrics.items()}
        )

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_params(self) -> int:
        return int(self.points.shape[1])

    @property
    def run_ids(self) -> list[str]:
        """Distinct run ids, in order of first appearance."""
        seen: dict[str, None] = {}
        for r in self.runs:
            seen.setdefault(str(r), None)
        return list(seen)

    def select(self, run: str) -> Trajectory:
        """The rows of one run."""
        mask = self.runs == run
        if not mask.any():
            raise InvalidParameterError(f"No run {run!r} in this trajectory; runs: {self.run_ids}.")
        return Trajectory(
            self.points[mask],
            self.steps[mask],
            self.runs[mask],
            self.names,
            self.shapes,
            {k: v[mask] for k, v in self.metrics.items()},
        )

    def __getitem__(self, index: Any) -> Trajectory:
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        return Trajectory(
            self.points[idx],
            self.steps[idx],
            self.runs[idx],
            self.names,
            self.shapes,
            {k: v[idx] for k, v in self.metrics.items()},
        )

    @classmethod
    def concat(cls, parts: Sequence[Trajectory]) -> Trajectory:
        """Stack trajectories of the same parameter space (e.g. several runs)."""
        if not parts:
            raise InvalidParameterError("Trajectory.concat needs at least one trajectory.")
        first = parts[0]
        for p in parts[1:]:
            if p.n_params != first.n_params or (p.names and first.names and p.names != first.names):
                raise ShapeMismatchError(
                    "Trajectories of different parameter spaces cannot be stacked; train the same "
                    "architecture."
                )
        keys = set.intersection(*(set(p.metrics) for p in parts)) if parts else set()
        return cls(
            np.concatenate([p.points for p in parts]),
            np.concatenate([p.steps for p in parts]),
            np.concatenate([p.runs for p in parts]),
            first.names,
            first.shapes,
            {k: np.concatenate([p.metrics[k] for p in parts]) for k in keys},
        )

    def with_run(self, run: str) -> Trajectory:
        """The same checkpoints labelled as run ``run``."""
        return Trajectory(
            self.points, self.steps, np.full(len(self), run), self.names, self.shapes, self.metrics
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_models(
        cls, models: Sequence[nn.Module], steps: Sequence[int] | None = None, run: str = "run0"
    ) -> Trajectory:
        """Rows from models of one architecture (e.g. snapshots kept in memory)."""
        if not models:
            raise InvalidParameterError("Trajectory.from_models needs at least one model.")
        space = ParameterSpace.from_module(models[0])
        rows = [space.flatten(m).cpu().float().numpy() for m in models]
        steps = list(range(len(models))) if steps is None else list(steps)
        return cls(
            np.stack(rows), np.asarray(steps), np.full(len(rows), run), space.names, space.shapes
        )

    @classmethod
    def from_checkpoints(
        cls,
        paths_or_folder: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        model: nn.Module,
        run: str = "run0",
        allow_pickle: bool = False,
    ) -> Trajectory:
        """Rows from ``*.pt`` state_dicts, ordered by the step number in their names.

        Files are read with ``weights_only=True`` (see :func:`losstopo.checkpoints.load_state_dict`).
        """
        from .checkpoints import load_state_dict

        if isinstance(paths_or_folder, (str, os.PathLike)) and Path(paths_or_folder).is_dir():
            paths = sorted(Path(paths_or_folder).glob("*.pt"))
        elif isinstance(paths_or_folder, (str, os.PathLike)):
            paths = [Path(paths_or_folder)]
        else:
            paths = [Path(p) for p in paths_or_folder]
        if not paths:
            raise InvalidParameterError(f"No *.pt checkpoints found in {paths_or_folder}.")

        def step_of(p: Path) -> int:
            nums = re.findall(r"\d+", p.stem)
            return int(nums[-1]) if nums else -1

        paths = sorted(paths, key=lambda p: (step_of(p), p.name))
        space = ParameterSpace.from_module(model)
        rows = []
        for p in paths:
            state = load_state_dict(p, allow_pickle=allow_pickle)
            space.check_state_dict(state, what=f"checkpoint {p.name}")
            rows.append(space.flatten(state).cpu().float().numpy())
        steps = [max(step_of(p), 0) if step_of(p) >= 0 else i for i, p in enumerate(paths)]
        return cls(
            np.stack(rows), np.asarray(steps), np.full(len(rows), run), space.names, space.shapes
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save as a compressed ``.npz``."""
        arrays: dict[str, np.ndarray] = {
            "points": self.points,
            "steps": self.steps,
            "runs": self.runs,
            "names": np.asarray(self.names),
            "shapes": np.asarray([str(s) for s in self.shapes]),
        }
        arrays.update({f"metric_{k}": v for k, v in self.metrics.items()})
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trajectory:
        """Read a trajectory written by :meth:`save`."""
        import ast

        with np.load(path, allow_pickle=False) as z:
            metrics = {k[len("metric_") :]: z[k] for k in z.files if k.startswith("metric_")}
            shapes = tuple(tuple(ast.literal_eval(s)) for s in z["shapes"])
            return cls(
                z["points"],
                z["steps"],
                z["runs"],
                tuple(str(n) for n in z["names"]),
                shapes,
                metrics,
            )


class TrajectoryRecorder:
    """Record checkpoints inside your own training loop.

    >>> import torch
    >>> model = torch.nn.Linear(2, 1)
    >>> rec = TrajectoryRecorder(model, run="a")
    >>> rec.record(0)
    >>> with torch.no_grad():
    ...     _ = model.weight.add_(1.0)
    >>> rec.record(1)
    >>> rec.trajectory().points.shape
    (2, 3)
    """

    def __init__(self, model: nn.Module, run: str = "run0", space: ParameterSpace | None = None):
        self.model = model
        self.run = run
        self.space = space or ParameterSpace.from_module(model)
        self._rows: list[np.ndarray] = []
        self._steps: list[int] = []
        self._metrics: dict[str, list[float]] = {}

    def record(self, step: int, **metrics: float) -> None:
        """Copy the model's current parameters as a new row."""
        self._rows.append(self.space.flatten(self.model).detach().cpu().float().numpy().copy())
        self._steps.append(int(step))
        for k in set(self._metrics) | set(metrics):
            column = self._metrics.setdefault(k, [float("nan")] * (len(self._rows) - 1))
            column.append(float(metrics.get(k, float("nan"))))

    def trajectory(self) -> Trajectory:
        if not self._rows:
            raise InvalidParameterError("Nothing recorded yet; call record(step) during training.")
        metrics = {k: np.asarray(v) for k, v in self._metrics.items()}
        return Trajectory(
            np.stack(self._rows),
            np.asarray(self._steps),
            np.full(len(self._rows), self.run),
            self.space.names,
            self.space.shapes,
            metrics,
        )


def train(
    model: nn.Module,
    data: Any,
    epochs: int = 10,
    optimizer: Literal["sgd", "adam"] | torch.optim.Optimizer = "sgd",
    lr: float = 0.1,
    batch_size: int = 64,
    loss: Any = "cross_entropy",
    record_every: int = 1,
    record_unit: Literal["epoch", "step"] = "epoch",
    seed: int = 0,
    run: str = "run0",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    progress: bool = True,
) -> Trajectory:
    """Train ``model`` in place with minibatch SGD/Adam and record its trajectory.

    The initial parameters are recorded as step 0, then every ``record_every`` epochs (or
    optimizer steps with ``record_unit="step"``). Deterministic for a given ``seed`` on CPU.
    ``data`` is an ``(inputs, targets)`` pair of tensors or a map-style
    ``torch.utils.data.Dataset`` (both shuffled with ``seed`` into batches of ``batch_size``), or
    a DataLoader / iterable of batches (used as given).

    ``metrics["loss"]`` is the training loss as the optimizer sees it: the mean of the minibatch
    losses over each epoch (or the last minibatch's loss with ``record_unit="step"``), with the
    model in train mode (BatchNorm on batch statistics). Step 0 is the same mean over one pass
    at the initial parameters, computed without changing the model, its buffers or the random
    state.
    """
    from .data import check_outputs, check_targets, resolve_loss

    epochs = validate_int(epochs, "epochs", low=1)
    record_every = validate_int(record_every, "record_every", low=1)
    batch_size = validate_int(batch_size, "batch_size", low=1)
    loss_fn, loss_name = resolve_loss(loss)
    gen = torch.Generator().manual_seed(seed)
    data = _as_batchable(data)
    if isinstance(optimizer, str):
        if optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
            )
        elif optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        else:
            raise InvalidParameterError(
                f"The 'optimizer' parameter must be 'sgd', 'adam' or a torch.optim.Optimizer. Got {optimizer!r} instead."
            )
    else:
        opt = optimizer
    recorder = TrajectoryRecorder(model, run=run)
    initial = _initial_loss(model, data, loss_fn, batch_size)
    check_targets(initial[1], loss_name)
    check_outputs(initial[2], initial[1], loss_name)
    recorder.record(0, loss=initial[0])
    step = 0
    iterator: Iterable[int] = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"train {run}", unit="epoch", leave=False)
    model.train()
    for epoch in iterator:
        total, count = 0.0, 0
        for xb, yb in _batches(data, batch_size, gen):
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            batch_loss = loss_fn(out, yb)
            batch_loss.backward()
            opt.step()
            step += 1
            total += float(batch_loss.detach()) * len(xb)
            count += len(xb)
            if record_unit == "step" and step % record_every == 0:
                recorder.record(step, loss=float(batch_loss.detach()))
        if record_unit == "epoch" and epoch % record_every == 0:
            recorder.record(epoch, loss=total / max(count, 1))
    model.eval()
    traj = recorder.trajectory()
    return traj


def _is_pair(data: Any) -> bool:
    return (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    )


def _as_batchable(data: Any) -> Any:
    """A map-style Dataset as its :class:`_DatasetBatches`; other data unchanged."""
    from torch.utils.data import Dataset, IterableDataset

    if isinstance(data, Dataset) and not isinstance(data, IterableDataset) and not _is_pair(data):
        return _DatasetBatches(data)
    if isinstance(data, Iterable) and iter(data) is data:
        return list(data)  # a one-shot iterator: kept, so step 0 and every epoch see it
    return data


class _DatasetBatches:
    """A map-style Dataset batched like a tensor pair (shuffled per epoch with the seed)."""

    def __init__(self, dataset: Any):
        from torch.utils.data import default_collate

        self.dataset = dataset
        self.collate = default_collate
        self.n = len(dataset)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from .data import batch_pair

        return batch_pair(self.collate([self.dataset[int(i)] for i in idx]), 0)


def _batches(
    data: Any, batch_size: int, gen: torch.Generator | None
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if _is_pair(data) or isinstance(data, _DatasetBatches):
        n = len(data[0]) if _is_pair(data) else data.n
        order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            yield (data[0][idx], data[1][idx]) if _is_pair(data) else data.batch(idx)
    else:
        yield from data


def _initial_loss(
    model: nn.Module, data: Any, loss_fn: Any, batch_size: int
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Mean minibatch loss at the initial parameters (train mode, nothing changed), and the
    first batch's targets and outputs for the checks."""
    buffers = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    total, count = 0.0, 0
    first: tuple[torch.Tensor, torch.Tensor] | None = None
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.train()
            for xb, yb in _batches(data, batch_size, None):
                try:
                    out = model(xb)
                    value = float(loss_fn(out, yb))
                except (RuntimeError, ValueError, IndexError, TypeError) as exc:
                    raise DataError(
                        f"The model or the loss fails on the training data before the first "
                        f"step ({type(exc).__name__}: {exc}); check that the inputs fit the "
                        "model and the targets fit the loss."
                    ) from exc
                if first is None:
                    first = (yb, out)
                total += value * len(xb)
                count += len(xb)
    finally:
        model.load_state_dict(buffers)
        model.train(was_training)
    if first is None:
        raise InvalidParameterError("The training data is empty; pass at least one batch.")
    return total / count, first[0], first[1]
