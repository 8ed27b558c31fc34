"""Permutation alignment: reorder one model's hidden units to match another's.

- :func:`permutation_spec`: which axes of which tensors share a permutation, derived from the
  model's graph (MLPs, CNNs with BatchNorm, residual networks), or :meth:`PermutationSpec.from_axes`.
- :func:`weight_matching`, :func:`activation_matching`: the permutation (Git Re-Basin).
- :func:`apply_permutation`: the reordered model (same function).
- :func:`align`: all of it, with the straight-path barrier before and after.

Examples
--------
>>> from losstopo.models import SmallCNN
>>> sorted(permutation_spec(SmallCNN(1, 10, width=4)).sizes.items())
[('0', 4), ('3', 8)]
"""

from .matching import (
    Permutation,
    activation_matching,
    apply_permutation,
    permute_points,
    permute_state,
    weight_matching,
)
from .report import AlignmentReport, align
from .spec import PermutationSpec, permutation_spec

__all__ = [
    "AlignmentReport",
    "Permutation",
    "PermutationSpec",
    "activation_matching",
    "align",
    "apply_permutation",
    "permutation_spec",
    "permute_points",
    "permute_state",
    "weight_matching",
]
