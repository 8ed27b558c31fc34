"""The evaluation engine: the loss (and metrics) of a model at many points of parameter space, fast.

One job per module:

- :mod:`.binding`: the private copy of the model whose parameters are views into one flat buffer;
  a point is written there fresh (``center + sum_i a_i d_i`` for a linear decoder).
- :mod:`.fold`: eval-mode BatchNorm folded into the layer before it; ``bn="recompute"``.
- :mod:`.split`: the first-layer split for linear decoders (``W(a)x = W0 x + sum_i a_i D_i x``).
- :mod:`.graph`: the model traced with ``torch.fx``; BatchNorm folded anywhere in the graph
  (residual blocks included); models that cannot be traced keep the generic path.
- :mod:`.graph_split`: the first-layer split on the traced graph's first affine layer.
- :mod:`.layout`: the traced graph's private layouts (a choice): 2D convolutions with
  channels-last weights, linear layers with 6 to 15 outputs padded to 16.
- :mod:`.tuning`: batch size, fast path and layout chosen from minima of interleaved timed points.
- :mod:`.vmap`: ``k`` points per call through ``torch.func`` (for GPUs).
- :mod:`.runs`: points run in blocks, keeping the values before a failing point; short points
  on copies of the model side by side, one per CPU thread.
- :mod:`.metrics`: the registry of metrics and the loss/metric sums of one point.
- :mod:`.evaluator`: :class:`Evaluator`, tying them together.
- :mod:`.device`: :func:`default_device`, the one default of every ``device=None``.

The engine takes a *decoder*, not a projector: an object with ``center`` and ``components``
arrays (linear: the fast paths apply) or a callable ``coords (m, d) -> params (m, n_params)``.

Examples
--------
>>> sorted(METRICS)
['accuracy']
>>> default_device().type in ("cpu", "cuda")
True
"""

from .binding import Binding, is_linear_decoder
from .device import default_device, resolve_device
from .evaluator import Decoder, Evaluator
from .fold import (
    Folded,
    FoldedLayer,
    batchnorm_policy,
    fold_batchnorm,
    is_plain_layer,
    recompute_batchnorm,
)
from .graph import fold_graph, trace
from .graph_split import GraphSplit
from .layout import Layout, LayoutConv, PaddedLinear, wrap_layers
from .metrics import METRICS, Metric, metrics_by_name, register_metric
from .runs import PointFailure
from .split import FirstLayerSplit
from .tuning import TUNE_MIN_POINTS

__all__ = [
    "METRICS",
    "TUNE_MIN_POINTS",
    "Binding",
    "Decoder",
    "Evaluator",
    "FirstLayerSplit",
    "Folded",
    "FoldedLayer",
    "GraphSplit",
    "Layout",
    "LayoutConv",
    "PaddedLinear",
    "Metric",
    "batchnorm_policy",
    "PointFailure",
    "default_device",
    "fold_batchnorm",
    "fold_graph",
    "is_linear_decoder",
    "is_plain_layer",
    "metrics_by_name",
    "recompute_batchnorm",
    "register_metric",
    "resolve_device",
    "trace",
    "wrap_layers",
]
