"""Loss and metrics of one point: sums over the batches, divided by the number of samples.

Metrics are a registry of functions, :data:`METRICS` (``name -> Metric``). A metric maps a batch's
outputs and targets to one score per sample; the engine sums the scores over all batches and
divides by the number of samples, so its value is the mean over the data however the data is
batched. ``accuracy`` is registered; :func:`register_metric` adds more.

Cross-entropy with accuracy runs fused (one row maximum serves the log-sum-exp and the
prediction), the engine's fast path for classifiers.

Examples
--------
>>> import torch
>>> out = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
>>> METRICS["accuracy"].scores(out, torch.tensor([0, 1, 1])).tolist()
[True, True, False]
>>> reduction = Reduction("cross_entropy", None, metrics_by_name(["accuracy"]), n_samples=3)
>>> loss, accuracy = reduction.point([(lambda x: x, out, torch.tensor([0, 1, 1]))])
>>> round(float(loss), 4), round(float(accuracy), 4)
(0.8557, 0.6667)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data import LossFn
from ..errors import InvalidParameterError, InvalidTypeError

#: ``(outputs, targets) -> one score per sample``.
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Metric:
    """A metric: per-sample ``scores`` averaged over the data.

    Attributes
    ----------
    name : str
    scores : callable ``(outputs, targets) -> tensor``
        One score per sample: shape ``(batch,)``, or ``(k, batch)`` for the outputs of ``k``
        points stacked on a leading axis (``mode="vmap"``); bool or numbers.
    skip_for : the named losses the metric does not apply to (accuracy: ``"mse"``)
    """

    name: str
    scores: ScoreFn
    skip_for: tuple[str, ...] = ()

    def applies_to(self, loss_name: str) -> bool:
        return loss_name not in self.skip_for


def _accuracy_scores(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.argmax(dim=-1) == y


ACCURACY = Metric("accuracy", _accuracy_scores, skip_for=("mse",))

#: The metrics :func:`losstopo.evaluate` accepts, by name.
METRICS: dict[str, Metric] = {ACCURACY.name: ACCURACY}


def register_metric(name: str, scores: ScoreFn, *, skip_for: Sequence[str] = ()) -> Metric:
    """Register a metric under ``name`` (replacing one of that name) and return it.

    Examples
    --------
    >>> import torch
    >>> m = register_metric("top2", lambda out, y: (out.topk(2, -1).indices == y[..., None]).any(-1))
    >>> m.scores(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([1])).tolist()
    [True]
    >>> del METRICS["top2"]
    """
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(f"A metric needs a non-empty name; got {name!r}.")
    if not callable(scores):
        raise InvalidTypeError(
            f"'scores' must be a callable (outputs, targets) -> per-sample scores; got "
            f"{type(scores).__name__}."
        )
    metric = Metric(name, scores, tuple(skip_for))
    METRICS[name] = metric
    return metric


def metrics_by_name(names: Iterable[str]) -> tuple[Metric, ...]:
    """The registered metrics named in ``names``, in that order; unknown names are refused."""
    out = []
    for name in names:
        if name not in METRICS:
            raise InvalidParameterError(
                f"The 'metrics' entry {name!r} is not a registered metric; use one of "
                f"{', '.join(repr(k) for k in METRICS)} (or register_metric(...))."
            )
        out.append(METRICS[name])
    return tuple(out)


def _precise_cross_entropy(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy of ``(batch, classes)`` logits and the argmax predictions.

    With ``top`` the row maximum at index ``p``, the loss is
    ``(top - z_y) + log1p(sum_{j != p} exp(z_j - top))``. When the target is the prediction the
    first term is exactly zero and the second is ``log1p`` of the small sum of the other classes'
    probability ratios, so the loss keeps float32 relative precision however small it is (the
    ``log(sum_j exp(z_j - top))`` of a log-softmax rounds to the ulp of 1 instead). Otherwise the
    loss is at least ``log 2`` and both forms are exact to float32 rounding.
    """
    top, predicted = out.max(dim=1)
    # exp(0) - 1 is exactly 0 at the prediction, and a NaN there (a +inf logit) stays NaN
    ratios = (out - top[:, None]).exp_().scatter_(1, predicted[:, None], -1.0, reduce="add")
    per_sample = ratios.sum(dim=1).log1p_().add_(top - out.gather(1, y[:, None]).squeeze(1))
    return per_sample, predicted


def cross_entropy_per_sample(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy of logits ``(batch, classes)`` and class indices, precise when small.

    Agrees with ``torch.nn.functional.cross_entropy(out, y, reduction="none")`` to float32
    rounding of the loss itself (relative), also at losses far below the ulp of the logits, where
    the log-softmax form loses all digits.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[20.0, 0.0, 0.0]])
    >>> exact = 2 * torch.exp(torch.tensor(-20.0, dtype=torch.float64)).item()  # log1p(2e^-20)
    >>> bool(abs(cross_entropy_per_sample(out, torch.tensor([0])).item() / exact - 1) < 1e-6)
    True
    >>> float(torch.nn.functional.cross_entropy(out, torch.tensor([0])))  # rounded to zero
    0.0
    """
    return _precise_cross_entropy(out, y)[0]


def cross_entropy_and_hits(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy (float64) and the number of correct argmax predictions, in one pass.

    One row maximum serves both the precise log-sum-exp (:func:`cross_entropy_per_sample`) and
    the prediction (the first maximal index, as ``argmax``). A ``+inf`` logit gives NaN, as
    ``torch.nn.functional.cross_entropy`` does.
    """
    per_sample, predicted = _precise_cross_entropy(out, y)
    return per_sample.sum(dtype=torch.float64), (predicted == y).sum()


def _total(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.stack(parts).sum()


class Reduction:
    """The loss and the metrics of one point, summed over the batches of the data.

    ``point`` returns the row ``[loss, metric_1, ...]`` (means over the ``n_samples``) with one
    device synchronisation; ``stacked`` gives the per-batch sums for ``k`` stacked points.
    """

    def __init__(
        self,
        loss_name: str,
        loss_fn: LossFn | None,
        metrics: Sequence[Metric],
        n_samples: int,
    ):
        self.loss_name = loss_name
        self.loss_fn = loss_fn
        self.metrics = tuple(metrics)
        self.n_samples = n_samples
        self.n_columns = 1 + len(self.metrics)
        # cross-entropy with the built-in accuracy: one fused pass (cross_entropy_and_hits)
        fused = [j for j, m in enumerate(self.metrics) if m is ACCURACY]
        self.fused = fused[0] if loss_name == "cross_entropy" and fused else None
        self.others = [(j, m) for j, m in enumerate(self.metrics) if j != self.fused]

    def loss_sum(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss summed over the batch's samples (float64)."""
        if self.loss_name == "cross_entropy":
            if y.dtype != torch.int64 or out.dim() != 2:
                return F.cross_entropy(out, y, reduction="sum").double()
            return cross_entropy_per_sample(out, y).sum(dtype=torch.float64)
        if self.loss_name == "mse":
            return F.mse_loss(out, y, reduction="sum").double() / max(out[0].numel(), 1)
        assert self.loss_fn is not None
        return self.loss_fn(out, y).double() * len(y)

    def point(
        self,
        batches: Iterable[
            tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor]
        ],
    ) -> np.ndarray:
        """``[loss, metrics...]`` of one point from ``(forward, inputs, targets)`` batches."""
        if not self.metrics and self.loss_name not in ("cross_entropy", "mse"):
            return self._user_loss(batches)
        losses: list[torch.Tensor] = []
        sums: list[list[torch.Tensor]] = [[] for _ in self.metrics]
        for fn, x, y in batches:
            out = fn(x)
            if self.fused is not None and y.dtype == torch.int64 and out.dim() == 2:
                loss, hit = cross_entropy_and_hits(out, y)
                losses.append(loss)
                sums[self.fused].append(hit)
                for j, m in self.others:
                    sums[j].append(m.scores(out, y).sum())
                continue
            losses.append(self.loss_sum(out, y))
            for j, m in enumerate(self.metrics):
                sums[j].append(m.scores(out, y).sum())
        total = _total(losses)
        if self.metrics:
            parts = [total, *(_total(s).to(total.dtype) for s in sums)]
            values = torch.stack(parts).tolist()  # one sync per point
        else:
            values = [total.item()]
        return np.asarray(values) / self.n_samples

    def _user_loss(
        self,
        batches: Iterable[
            tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor]
        ],
    ) -> np.ndarray:
        """A user's loss alone: batch means weighted by the batch sizes, summed as Python floats
        on the CPU (two tensor operations fewer per batch, the same float64 arithmetic), as
        float64 tensors on a device (one synchronisation per point, not per batch)."""
        assert self.loss_fn is not None
        total, on_device = 0.0, []
        for fn, x, y in batches:
            loss = self.loss_fn(fn(x), y)
            if loss.device.type == "cpu":
                total += float(loss) * len(y)
            else:
                on_device.append(loss.double() * len(y))
        if on_device:
            total += _total(on_device).item()
        return np.array([total / self.n_samples])

    def stacked(self, outs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(k, 1 + n_metrics)`` float64 sums of one batch for the outputs of ``k`` points."""
        columns = [torch.stack([self.loss_sum(o, y) for o in outs])]
        columns += [m.scores(outs, y).sum(dim=-1).double() for m in self.metrics]
        return torch.stack(columns, dim=1)
