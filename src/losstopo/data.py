"""Evaluation data: losses by name, and data moved to the device once.

Examples
--------
>>> import torch
>>> from losstopo.data import EvalData, resolve_loss
>>> fn, name = resolve_loss("cross_entropy")
>>> data = EvalData.from_any((torch.zeros(5, 3), torch.zeros(5, dtype=torch.long)), loss_name=name)
>>> data.n_samples
5
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .errors import DataError, EvaluationError, InvalidParameterError, InvalidTypeError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_NAMED_LOSSES: dict[str, LossFn] = {
    "cross_entropy": F.cross_entropy,
    "mse": F.mse_loss,
}


def resolve_loss(loss: str | LossFn) -> tuple[LossFn, str]:
    """A loss callable ``(outputs, targets) -> mean loss`` and its name."""
    if isinstance(loss, str):
        if loss not in _NAMED_LOSSES:
            raise InvalidParameterError(
                f"Unknown loss {loss!r}; use one of {', '.join(_NAMED_LOSSES)} or pass a callable "
                "(outputs, targets) -> mean loss."
            )
        return _NAMED_LOSSES[loss], loss
    if callable(loss):
        name = getattr(loss, "__qualname__", getattr(loss, "__name__", type(loss).__name__))
        if name in _NAMED_LOSSES:
            # a callable runs as given: its name must not select a built-in path
            name = f"{getattr(loss, '__module__', None) or 'callable'}.{name}"
        return loss, name
    raise InvalidTypeError(
        f"'loss' must be a name ({', '.join(_NAMED_LOSSES)}) or a callable; got {type(loss).__name__}."
    )


def check_targets(targets: torch.Tensor, loss_name: str) -> None:
    """Refuse targets whose dtype cannot work with a named loss."""
    if loss_name == "cross_entropy" and not (
        targets.dtype in (torch.int64, torch.int32, torch.uint8, torch.int16)
        or targets.is_floating_point()
    ):
        raise DataError(f"cross_entropy needs integer class targets; got dtype {targets.dtype}.")
    if loss_name == "cross_entropy" and targets.is_floating_point():
        if targets.dim() == 1:
            raise DataError(
                f"Targets have dtype {targets.dtype} but cross_entropy expects class indices of "
                "dtype int64; convert class labels with targets.long(), or for regression targets "
                "use loss='mse' (--loss mse on the command line)."
            )
        rows = targets.detach().reshape(len(targets), targets.shape[1], -1).double()
        if len(rows) and (
            targets.shape[1] == 1
            or bool((rows < 0).any())
            or not torch.allclose(rows.sum(dim=1), torch.ones((), dtype=torch.float64), atol=1e-3)
        ):
            raise DataError(
                f"Targets have dtype {targets.dtype} and are not class probabilities (each row "
                "non-negative, summing to 1), which is all cross_entropy accepts as float targets; "
                "for regression targets use loss='mse' (--loss mse on the command line)."
            )
    if loss_name == "mse" and not targets.is_floating_point():
        raise DataError(
            f"Targets have dtype {targets.dtype} but mse expects floating-point targets of the "
            "outputs' shape; convert them with targets.float()."
        )


def as_loader(data: Any, batch_size: int) -> Any:
    """A map-style ``Dataset`` as an unshuffled ``DataLoader`` of ``batch_size``; else ``data``.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> loader = as_loader(TensorDataset(torch.zeros(5, 2), torch.zeros(5)), 2)
    >>> [len(x) for x, _ in loader]
    [2, 2, 1]
    """
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        return DataLoader(data, batch_size=batch_size, shuffle=False)
    return data


def check_outputs(outputs: torch.Tensor, targets: torch.Tensor, loss_name: str) -> None:
    """Refuse outputs a named loss would turn into a meaningless number (one output per sample).

    Cross-entropy of a single logit is ``log softmax = 0`` at every point, so a regression model
    evaluated with the default loss would give a flat zero landscape without a word.

    Examples
    --------
    >>> import torch
    >>> check_outputs(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), "cross_entropy")
    >>> check_outputs(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long), "cross_entropy")
    Traceback (most recent call last):
    ...
    losstopo.errors.DataError: The model gives one output per sample ...
    """
    if loss_name != "cross_entropy":
        return
    if outputs.dim() < 2 or outputs.shape[1] == 1:
        raise DataError(
            f"The model gives one output per sample (output shape {tuple(outputs.shape)}), "
            "so cross_entropy is 0 at every point; for a regression model use loss='mse' "
            "(--loss mse on the command line)."
        )


def check_loss_value(loss: object) -> None:
    """Refuse a loss that does not return one number per batch (its batch mean).

    Examples
    --------
    >>> import torch
    >>> check_loss_value(torch.tensor(0.5))
    >>> check_loss_value(torch.zeros(4))
    Traceback (most recent call last):
    ...
    losstopo.errors.EvaluationError: The loss returns (4,), not one number per batch; ...
    """
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise EvaluationError(
            f"The loss returns {shape}, not one number per batch; give a loss that returns "
            "the batch's mean as a scalar tensor (e.g. reduction='mean')."
        )


def batch_pair(batch: Any, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(inputs, targets)`` tensors of batch ``i`` (a pair, or a dict with inputs/targets).

    Examples
    --------
    >>> import torch
    >>> x, y = batch_pair({"x": torch.zeros(2, 3), "y": torch.ones(2)}, 0)
    >>> tuple(x.shape), tuple(y.shape)
    ((2, 3), (2,))
    """
    if isinstance(batch, dict):
        batch = (batch.get("inputs", batch.get("x")), batch.get("targets", batch.get("y")))
    if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
        raise InvalidTypeError(
            f"Batch {i} of the data is a {type(batch).__name__}, expected an (inputs, targets) pair."
        )
    x, y = batch[0], batch[1]
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise InvalidTypeError(
            f"Batch {i} must hold tensors; got {type(x).__name__}, {type(y).__name__}."
        )
    if len(x) != len(y):
        raise DataError(f"Batch {i} has {len(x)} inputs but {len(y)} targets.")
    return x, y


@dataclass
class EvalData:
    """Evaluation data, either resident on the device as one tensor pair or streamed per pass."""

    inputs: torch.Tensor | None
    targets: torch.Tensor | None
    source: Any
    n_samples: int
    fingerprint: str
    description: dict[str, Any]

    @classmethod
    def from_any(
        cls,
        data: Any,
        loss_name: str,
        device: torch.device | str = "cpu",
        memory_cap: int = 2**30,
        batch_size: int = 256,
    ) -> EvalData:
        """Read ``data`` once: a tensor pair, a map-style Dataset, a DataLoader or any iterable
        of pairs.

        A map-style ``torch.utils.data.Dataset`` is read in order in batches of ``batch_size``
        (as a ``DataLoader(dataset, batch_size)`` would). Data under ``memory_cap`` bytes is
        concatenated and moved to ``device`` once.
        """
        data = as_loader(data, batch_size)
        if (
            isinstance(data, (tuple, list))
            and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)
        ):
            batches = [batch_pair(data, 0)]
            source: Any = None
        else:
            if not isinstance(data, Iterable):
                raise InvalidTypeError(
                    f"'data' must be an (inputs, targets) pair, a DataLoader or an iterable of "
                    f"pairs; got {type(data).__name__}."
                )
            batches = [batch_pair(b, i) for i, b in enumerate(data)]
            source = data
        n = sum(len(x) for x, _ in batches)
        if n == 0:
            raise DataError("The evaluation data is empty; pass at least one sample.")
        for _, y in batches:
            check_targets(y, loss_name)
        h = hashlib.sha256()
        nbytes = 0
        for x, y in batches:
            for t in (x, y):
                arr = t.detach().cpu().contiguous()
                h.update(str(arr.dtype).encode() + str(tuple(arr.shape)).encode())
                h.update(
                    arr.numpy().tobytes()
                    if arr.dtype != torch.bfloat16
                    else arr.float().numpy().tobytes()
                )
                nbytes += arr.element_size() * arr.numel()
        x0, y0 = batches[0]
        digest = h.hexdigest()[:16]
        description: dict[str, Any] = {
            "n_samples": n,
            "input_shape": list(x0.shape[1:]),
            "target_dtype": str(y0.dtype).replace("torch.", ""),
            "hash": digest,
        }
        if nbytes <= memory_cap:
            inputs = torch.cat([x for x, _ in batches]).to(device)
            targets = torch.cat([y for _, y in batches]).to(device)
            return cls(inputs, targets, None, n, digest, description)
        description["streamed"] = True
        return cls(
            None,
            None,
            source if source is not None else batches,
            n,
            digest,
            description,
        )

    @property
    def resident(self) -> bool:
        return self.inputs is not None

    def batches(
        self, batch_size: int, device: torch.device | str
    ) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of the data on ``device`` (views when resident)."""
        if self.inputs is not None and self.targets is not None:
            for i in range(0, self.n_samples, batch_size):
                yield self.inputs[i : i + batch_size], self.targets[i : i + batch_size]
        else:
            for i, b in enumerate(self.source):
                x, y = batch_pair(b, i)
                yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
