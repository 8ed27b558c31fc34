"""`align`: permute one model onto another and measure the barrier before and after.

Examples
--------
>>> import torch
>>> from losstopo.alignment import align
>>> from losstopo.datasets import synthetic_classification
>>> from losstopo.models import MLP
>>> _ = torch.manual_seed(0)
>>> a, b = MLP(16, (8,), 3), MLP(16, (8,), 3)
>>> report = align(a, b, synthetic_classification(), "cross_entropy", n_points=5)
>>> report.before.kind, report.barrier_after >= 0
('linear', True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ..connectivity import PathProfile, interpolate
from ..errors import validate_choice
from .matching import Permutation, activation_matching, apply_permutation, weight_matching
from .spec import PermutationSpec

__all__ = ["AlignmentReport", "align"]


@dataclass(frozen=True, eq=False)
class AlignmentReport:
    """The straight-path profiles before and after aligning ``model_b`` to ``model_a``.

    Attributes
    ----------
    before, after : PathProfile of ``A -> B`` and of ``A -> aligned B``
    permutation : the Permutation applied to B
    model : the aligned copy of B (same function as B)
    attrs : method and matching time (``seconds``)
    """

    before: PathProfile
    after: PathProfile
    permutation: Permutation
    model: nn.Module
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def barrier_before(self) -> float:
        return float(self.before.barrier)

    @property
    def barrier_after(self) -> float:
        return float(self.after.barrier)

    @property
    def ratio(self) -> float:
        """``barrier_after / barrier_before`` (0 when there was no barrier to begin with)."""
        return self.barrier_after / self.barrier_before if self.barrier_before > 0 else 0.0

    def __repr__(self) -> str:
        return (
            f"AlignmentReport(method={self.attrs.get('method')!r}, barrier "
            f"{self.barrier_before:.4g} -> {self.barrier_after:.4g})"
        )


def align(
    model_a: nn.Module,
    model_b: nn.Module,
    data: Any,
    loss: Any,
    method: Literal["weights", "activations"] = "weights",
    n_points: int = 21,
    metrics: Sequence[str] = ("accuracy",),
    bn: Literal["recompute", "eval"] = "recompute",
    spec: PermutationSpec | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> AlignmentReport:
    """Align ``model_b`` to ``model_a`` by a permutation of its units; the barrier before/after.

    ``method="weights"``: :func:`weight_matching`; ``"activations"``:
    :func:`activation_matching` on ``data``. The barriers are those of :func:`interpolate`
    (``n_points``, ``metrics``, ``bn``) on ``data``. Neither model is modified.
    """
    validate_choice(method, "method", ("weights", "activations"))
    before = interpolate(model_a, model_b, data, loss, n_points, metrics, bn, device)
    t0 = time.perf_counter()
    if method == "weights":
        perm = weight_matching(model_a, model_b, spec=spec, seed=seed)
    else:
        perm = activation_matching(model_a, model_b, data, spec=spec)
    seconds = time.perf_counter() - t0
    aligned = apply_permutation(model_b, perm)
    after = interpolate(model_a, aligned, data, loss, n_points, metrics, bn, device)
    return AlignmentReport(
        before, after, perm, aligned, {"method": method, "seconds": round(seconds, 4)}
    )
