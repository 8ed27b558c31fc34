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

from .errors import DataError, InvalidParameterError, InvalidTypeError

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
        return loss, getattr(loss, "__qualname__", getattr(loss, "__name__", type(loss).__name__))
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
    if loss_name == "cross_entropy" and targets.is_floating_point() and targets.dim() == 1:
        raise DataError(
            f"Targets have dtype {targets.dtype} but cross_entropy expects class indices of dtype "
            "int64; convert them with targets.long()."
        )
    if loss_name == "mse" and not targets.is_floating_point():
        raise DataError(
            f"Targets have dtype {targets.dtype} but mse expects floating-point targets of the "
            "outputs' shape; convert them with targets.float()."
        )


def _as_pair(batch: Any, i: int) -> tuple[torch.Tensor, torch.Tensor]:
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
    ) -> EvalData:
        """Read ``data`` once: a tensor pair, a DataLoader or any iterable of pairs.

        Data under ``memory_cap`` bytes is concatenated and moved to ``device`` once.
        """
        if (
            isinstance(data, (tuple, list))
            and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)
        ):
            batches = [_as_pair(data, 0)]
            source: Any = None
        else:
            if not isinstance(data, Iterable):
                raise InvalidTypeError(
                    f"'data' must be an (inputs, targets) pair, a DataLoader or an iterable of "
                    f"pairs; got {type(data).__name__}."
                )
            batches = [_as_pair(b, i) for i, b in enumerate(data)]
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
                x, y = _as_pair(b, i)
                yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
