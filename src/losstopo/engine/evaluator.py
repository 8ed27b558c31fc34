"""The per-point evaluator behind :func:`losstopo.evaluate` and :func:`losstopo.evaluate_points`.

It ties the parts of the engine together: the private flat-buffer copy of the model
(:mod:`.binding`), BatchNorm folding and re-estimation (:mod:`.fold`, :mod:`.graph`), the
first-layer split (:mod:`.split`, :mod:`.graph_split`), the convolutions' layout
(:mod:`.layout`), the choice among them by timing (:mod:`.tuning`), ``vmap`` (:mod:`.vmap`) and
the loss and metric sums (:mod:`.metrics`).

Points are given as latent coordinates decoded by a *decoder* (a linear one, with ``center`` and
``components``, or any callable ``coords (m, d) -> params (m, n_params)``), or directly as flat
parameter vectors (:meth:`Evaluator.evaluate_params`).

Examples
--------
>>> import types
>>> import numpy as np, torch
>>> from losstopo import ParameterSpace
>>> from losstopo.data import EvalData, resolve_loss
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
>>> space = ParameterSpace.from_module(model)
>>> data = EvalData.from_any((torch.randn(20, 4), torch.randint(0, 3, (20,))), "cross_entropy")
>>> center = space.flatten(model).double().numpy()
>>> plane = types.SimpleNamespace(center=center, components=np.eye(2, center.size))
>>> fn, name = resolve_loss("cross_entropy")
>>> ev = Evaluator(model, space, plane, data, fn, name, ["accuracy"], torch.device("cpu"))
>>> ev.prepare(n_points=2)
>>> values = ev.evaluate(np.array([[0.0, 0.0], [0.5, -1.0]]))
>>> values.shape
(2, 2)
>>> rows = Evaluator(model, space, None, data, fn, name, ["accuracy"], torch.device("cpu"))
>>> bool(np.allclose(rows.evaluate_params(center[None]), values[:1]))
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..data import EvalData, LossFn, check_loss_value, check_outputs
from ..errors import EvaluationError, InvalidParameterError
from ..space import ParameterSpace
from .binding import Binding, LinearTensors, is_linear_decoder, moved_buffers
from .fold import (
    Folded,
    batchnorm_modules,
    fold_batchnorm,
    has_batch_statistics,
    recompute_batchnorm,
)
from .graph import OWN_FORWARD, fold_graph, relu_in_place, torch_forwards_only, trace
from .graph_split import GraphSplit, describe_paths
from .layout import Layout, wrap_layers
from .metrics import Reduction, metrics_by_name
from .runs import Copies, PointFailure, copies_for, in_blocks, side_by_side
from .split import FirstLayerSplit
from .tuning import TUNE_MIN_POINTS, batch_size_candidates, choose, choose_parallelism
from .vmap import evaluate_stacked

#: ``coords (m, n_components) -> params (m, n_params)``.
Decoder = Callable[[np.ndarray], np.ndarray]


class Evaluator:
    """Evaluate loss and metrics at points of parameter space.

    Parameters
    ----------
    model : the architecture (copied; the caller's module is never touched)
    space : the model's :class:`~losstopo.ParameterSpace`
    decoder : a linear decoder (``center``, ``components``), a callable from coordinates to
        parameters, or ``None`` when only :meth:`evaluate_params` is used
    data, loss_fn, loss_name : the evaluation data and the resolved loss
    metrics : names registered in :data:`losstopo.engine.metrics.METRICS`
    device : where to evaluate
    n_components : number of coordinates of a non-linear decoder (for the timing probe)
    bn, bn_data, bn_batches, bn_batch_size : BatchNorm policy, as for :func:`losstopo.evaluate`
    batch_size : evaluation batch size (``None``: chosen by :meth:`prepare`)
    first_layer : allow the first-layer split
    memory_cap : bytes the split's cached terms may take
    """

    #: Upper bound on the bytes of decoded parameter vectors held at once (non-linear decoders).
    decode_bytes = 2**28

    def __init__(
        self,
        model: torch.nn.Module,
        space: ParameterSpace,
        decoder: Any,
        data: EvalData,
        loss_fn: LossFn,
        loss_name: str,
        metrics: Sequence[str],
        device: torch.device,
        *,
        n_components: int | None = None,
        bn: str = "eval",
        bn_data: EvalData | None = None,
        bn_batches: int = 4,
        bn_batch_size: int = 256,
        batch_size: int | None = None,
        first_layer: bool = True,
        memory_cap: int = 2**30,
    ):
        self.space = space
        self.decoder = decoder

        def another() -> Evaluator:  # a copy to evaluate side by side with this one
            other = Evaluator(
                model, space, decoder, data, loss_fn, loss_name, metrics, device,
                n_components=n_components, bn=bn, bn_data=bn_data, bn_batches=bn_batches,
                bn_batch_size=bn_batch_size, batch_size=batch_size, first_layer=first_layer,
                memory_cap=memory_cap,
            )  # fmt: skip
            other._copy_inputs = self.copy_inputs
            return other

        self._copies = Copies(another)
        self.side_by_side = 1  # copies evaluating side by side, this one included (:mod:`.runs`)
        self.data = data
        self.loss_fn = loss_fn
        self.loss_name = loss_name
        self.metrics = tuple(metrics)
        metric_list = metrics_by_name(self.metrics)
        self.reduction = Reduction(loss_name, loss_fn, metric_list, data.n_samples)
        self.device = device
        self.bn = bn
        self.bn_data = bn_data or data
        self.bn_batches = bn_batches
        self.bn_batch_size = bn_batch_size
        self.memory_cap = memory_cap
        self.binding = Binding(model, space, device)
        self.net = self.binding.net
        self.dtype = self.binding.dtype
        self._bn_modules = batchnorm_modules(self.net)
        self.linear: LinearTensors | None = (
            LinearTensors(decoder, self.dtype, device) if is_linear_decoder(decoder) else None
        )
        # dir_type="states" planes move floating-point buffers (BatchNorm statistics) too
        self._buffers = moved_buffers(self.net, getattr(decoder, "buffers", None), bn, device)
        linear_d = self.linear.n_components if self.linear is not None else None
        self.n_components = int(linear_d or n_components or 0)
        # BatchNorm without running statistics normalises with each batch's own statistics even
        # in eval mode: the values depend on the batch size, so use one batch of all the data.
        batch_dependent = has_batch_statistics(self.net)
        self._tune = batch_size is None and not batch_dependent
        if batch_size is None and batch_dependent:
            batch_size = data.n_samples
        self.batch_size = batch_size or min(data.n_samples, 4096)
        self._split: FirstLayerSplit | GraphSplit | None = None
        self._built_split: list[FirstLayerSplit | GraphSplit | None] = []  # built once
        self._first_layer_requested = first_layer
        self._copy_inputs: bool | None = None  # whether the model writes into its input
        self.threads: int | None = None  # torch threads while evaluating (None: as they are)
        # Eval-mode BatchNorm folded into the layer before it (refreshed at every point), in the
        # traced graph (torch.fx) or, when tracing fails, inside nn.Sequential containers.
        self._graph = None
        self._folded: Folded | None = None
        self._layout: Layout | None = None  # the private layouts (traced graphs)
        self.trace_failure = ""
        want_fold = bn == "eval" and not self._buffers
        if want_fold or self._split_possible():
            self._graph, self.trace_failure = trace(self.net)
            if self._graph is None:
                self._folded = fold_batchnorm(self.net) if want_fold else None
            else:
                pairs = fold_graph(self._graph) if want_fold else []
                self._folded = Folded(self._graph, pairs) if pairs else None
                layout = Layout(pairs, *wrap_layers(self._graph))
                self._layout = layout if layout.layers else None
                if not pairs and self._layout is None and not torch_forwards_only(self.net):
                    # nothing to rewrite: a forward of the user's own runs as written (with its
                    # Python side effects) rather than as a trace of it
                    self._graph, self.trace_failure = None, OWN_FORWARD
                else:
                    relu_in_place(self._graph)
        if self._folded is not None and self.linear is not None:
            # BatchNorms whose affine parameters no direction moves: their scale and folded
            # bias, those of the centre at every point, are computed once
            self.binding.write_linear(self.linear, np.zeros(self.linear.n_components))
            self._folded.hold_fixed(self.linear.moving(space), self.net)

    # ------------------------------------------------------------------ setup
    def prepare(
        self,
        n_points: int,
        probe: np.ndarray | None = None,
        strategy: Mapping[str, Any] | None = None,
    ) -> None:
        """Choose the batch size and whether to use the first-layer split, by timing whole points.

        ``probe`` is the parameter vector timed when there is no decoder (default: the decoder's
        point at the origin, or at 0.5 along every direction of a linear decoder, so the split's
        combination of terms is timed too). A ``strategy`` (a :attr:`strategy` recorded before,
        or :meth:`fixed_strategy`) is applied as it is, without timing: the same strategy gives
        the same values, bit for bit.
        """
        use_split = self._split_possible()
        n = self.data.n_samples
        if strategy is not None:
            self.batch_size = max(1, min(n, int(strategy["batch_size"])))
            wanted = bool(strategy["first_layer_split"]) and use_split
            self._split = self._build_split() if wanted else None
            self._set_layout(
                bool(strategy.get("channels_last", False) or strategy.get("padded_linear", False))
            )
            self.threads = strategy.get("threads")
            self.side_by_side = int(strategy.get("side_by_side", 1))
            return
        if not (self._tune and self.data.resident and n_points >= TUNE_MIN_POINTS):
            self.batch_size = min(n, 1024) if self._tune else self.batch_size
            self._split = self._build_split() if use_split else None
            return
        coords = np.full(self.n_components, 0.5 if self.linear is not None else 0.0)
        if self.linear is None and probe is None:
            probe = np.asarray(self.decoder(coords[None]))[0]

        def point() -> np.ndarray:  # as evaluation runs it: the point written, then evaluated
            self.set_point(coords, probe)
            return self._evaluate_current(coords)

        def setup(candidate: tuple[int, bool, bool]) -> Callable[[], object] | None:
            self.batch_size, split, layout = candidate
            self._split = self._build_split() if split else None
            if split and self._split is None:
                return None  # the split does not fit in memory
            self._set_layout(layout)
            return point

        sizes = batch_size_candidates(n)
        candidates = [
            (bs, split, layout)
            for layout in ((False, True) if self._layout is not None else (False,))
            for split in ((True, False) if use_split else (False,))
            for bs in sizes
        ]
        chosen = choose(candidates, setup, n_points, reference=(sizes[0], False, False))
        setup(chosen)
        if self.device.type == "cpu":  # the copies hold parameters, centre and directions
            per_copy = (2 + self.n_components) * self.space.n_params * self.dtype.itemsize
            copies = copies_for(per_copy if self.linear is not None else None, self.memory_cap)
            self.threads, self.side_by_side = choose_parallelism(point, n_points, copies)

    def _set_layout(self, on: bool) -> None:
        if self._layout is not None:
            self._layout.set(on)

    def _split_possible(self) -> bool:
        return (
            self._first_layer_requested
            and self.linear is not None
            and self.bn != "recompute"
            and self.data.resident
        )

    def fixed_strategy(self) -> dict[str, Any]:
        """The strategy used without timing: batch size ``min(n_samples, 1024)`` (or the one
        given, or all samples for batch-dependent BatchNorm) and the split whenever it applies."""
        bs = min(self.data.n_samples, 1024) if self._tune else self.batch_size
        return {"batch_size": int(bs), "first_layer_split": self._split_possible()}

    @property
    def strategy(self) -> dict[str, Any]:
        """What :meth:`prepare` chose: ``{"batch_size": int, "first_layer_split": bool}``,
        ``"channels_last": True`` when the convolutions run channels-last, ``"padded_linear":
        True`` when the linear layers with 6 to 15 outputs run padded to 16 (the private
        layouts, chosen together), ``"threads"`` when evaluation runs with another number of
        threads than the process's, and ``"side_by_side"``: the number of copies of the model
        evaluating points side by side on threads of their own (:mod:`.runs`)."""
        out = {"batch_size": int(self.batch_size), "first_layer_split": self._split is not None}
        if self._layout is not None and self._layout.channels_last:
            out["channels_last"] = True  # the convolutions' weights, channels-last
        if self._layout is not None and self._layout.padded_linear:
            out["padded_linear"] = True  # small linear outputs padded to 16
        if self.threads is not None:
            out["threads"] = int(self.threads)  # set for the evaluation only
        if self.side_by_side > 1:
            out["side_by_side"] = int(self.side_by_side)  # copies, each with `threads` threads
        return out

    def check_forward(self) -> None:
        """One forward pass at the centre, so a data/model mismatch gets a clear message first."""
        try:
            out, y, loss = self._probe_forward()
        except (RuntimeError, ValueError, IndexError, TypeError) as exc:
            raise EvaluationError(
                f"The model or the loss fails on the data before any grid point "
                f"({type(exc).__name__}: {exc}); check that the inputs fit the model and the "
                "targets fit the loss."
            ) from exc
        check_outputs(out, y, self.loss_name)
        check_loss_value(loss)

    def _probe_forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outputs, targets and loss of the first 8 samples; records whether the model writes
        into its input (a normal tensor, unlike an inference one, counts the writes)."""
        x, y = next(iter(self.data.batches(min(self.data.n_samples, 8), self.device)))
        with torch.inference_mode(False):
            x = x.clone()
        version = x._version
        with torch.inference_mode():
            out = self.net(x)
            self._copy_inputs = x._version != version
            return out, y, self.loss_fn(out, y)

    def _build_split(self) -> FirstLayerSplit | GraphSplit | None:
        """The first-layer split (built once: its terms serve every batch size)."""
        if self._built_split:
            return self._built_split[0]
        assert self.linear is not None
        args = (self.space, self.linear, self.data, self.batch_size, self.device, self.memory_cap)
        split: FirstLayerSplit | GraphSplit | None
        if self._graph is not None:
            split = GraphSplit.build(self._graph, self.net, *args)
            if split is not None:
                split.copy_inputs = self.copy_inputs
        else:
            net = self._folded.net if self._folded is not None else self.net
            split = FirstLayerSplit.build(net, self.net, *args)
        self._built_split.append(split)
        return split

    @property
    def copy_inputs(self) -> bool:
        """Whether the model writes into its input (then every batch is copied before the model
        sees it, so the cached data stays as given)."""
        if self._copy_inputs is None:
            try:
                self._probe_forward()
            except Exception:  # noqa: BLE001 - check_forward reports a failing model
                self._copy_inputs = bool(self._copy_inputs)
        return bool(self._copy_inputs)

    @property
    def fast_paths(self) -> dict[str, Any]:
        """Which path ran (``"fx"``: the traced graph; ``"generic"``: tracing failed, or no fast
        path applies) and one sentence saying what it did."""
        return describe_paths(
            self._graph is not None,
            self.trace_failure,
            self._folded,
            self._split,
            self.copy_inputs,
            self._layout.describe() if self._layout is not None else "",
        )

    @property
    def engine_name(self) -> str:
        name = "sequential+first-layer-split" if self._split is not None else "sequential"
        name += "+bn-folded" if self._folded is not None else ""
        name += "+channels-last" if self._layout and self._layout.channels_last else ""
        name += "+padded-linear" if self._layout and self._layout.padded_linear else ""
        return name + ("+side-by-side" if self.side_by_side > 1 else "")

    # ------------------------------------------------------------------ points
    def set_point(self, coords: np.ndarray, decoded: np.ndarray | None = None) -> None:
        """Write the parameters of one point into the flat buffer, fresh from the centre."""
        if self.linear is not None:
            self.binding.write_linear(self.linear, coords)
            for buf, c, d in self._buffers:
                a = torch.as_tensor(coords, dtype=buf.dtype, device=buf.device)
                torch.add(c, torch.tensordot(a, d, dims=1), out=buf)
        else:
            assert decoded is not None
            self.binding.write(decoded)

    def evaluate(
        self, coords: np.ndarray, mode: str = "sequential", vmap_size: int = 8
    ) -> np.ndarray:
        """Loss and metrics at each row of ``coords``: array (n, 1 + n_metrics).

        A non-linear decoder decodes the points in blocks of at most ``decode_bytes`` so a
        large model never holds a whole chunk of decoded parameter vectors at once.
        """
        coords = np.atleast_2d(np.asarray(coords, dtype=np.float64))
        if mode == "vmap" and self._buffers:
            raise InvalidParameterError(
                "mode='vmap' keeps the buffers fixed but these directions move the BatchNorm "
                "running statistics (dir_type='states'); use mode='sequential'."
            )
        if self.linear is not None:
            return self._run(coords, len(coords), None, mode, vmap_size)
        block = max(1, self.decode_bytes // (8 * self.space.n_params))
        decoder = self.decoder
        return self._run(
            coords, block, lambda s, e: np.asarray(decoder(coords[s:e])), mode, vmap_size
        )

    def evaluate_params(
        self, points: np.ndarray, mode: str = "sequential", vmap_size: int = 8
    ) -> np.ndarray:
        """Loss and metrics at each row of ``points`` (flat parameter vectors): (n, 1 + n_metrics)."""
        if self.linear is not None:
            raise TypeError("evaluate_params needs an Evaluator built without a linear decoder.")
        coords = np.empty((len(points), 0))
        return self._run(coords, len(points), lambda s, e: points[s:e], mode, vmap_size)

    def _run(
        self,
        coords: np.ndarray,
        block: int,
        decode: Callable[[int, int], np.ndarray] | None,
        mode: str,
        vmap_size: int,
    ) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads or before)  # the strategy's, for the evaluation only
        try:
            return self._run_blocks(coords, block, decode, mode, vmap_size)
        finally:
            torch.set_num_threads(before)

    def _run_blocks(
        self,
        coords: np.ndarray,
        block: int,
        decode: Callable[[int, int], np.ndarray] | None,
        mode: str,
        vmap_size: int,
    ) -> np.ndarray:
        n, columns = len(coords), self.reduction.n_columns
        if mode == "vmap":

            def run(s: int, e: int) -> np.ndarray:
                decoded = None if decode is None else decode(s, e)
                return self._evaluate_vmap(coords[s:e], decoded, vmap_size)

            return in_blocks(run, n, columns, max(vmap_size, block - block % vmap_size))
        if self.side_by_side > 1 and decode is None and n > 1:
            same = {k: v for k, v in self.strategy.items() if k not in ("threads", "side_by_side")}
            runs = [
                lambda s, e, ev=ev: ev._evaluate_sequential(coords[s:e], None)
                for ev in (self, *self._copies.get(self.side_by_side - 1, same))
            ]  # blocks of a quarter of each copy's share: a slowed copy holds the others little
            per_block = max(1, min(block, -(-n // (4 * len(runs)))))
            return side_by_side(runs, n, columns, per_block, self.threads or 1)

        def one_by_one(s: int, e: int) -> np.ndarray:
            return self._evaluate_sequential(coords[s:e], None if decode is None else decode(s, e))

        return in_blocks(one_by_one, n, columns, block)

    def _evaluate_sequential(self, coords: np.ndarray, decoded: np.ndarray | None) -> np.ndarray:
        out = np.empty((len(coords), self.reduction.n_columns))
        for i in range(len(coords)):
            try:
                self.set_point(coords[i], None if decoded is None else decoded[i])
                if self.bn == "recompute":
                    self._recompute_bn()
                out[i] = self._evaluate_current(coords[i])
            except Exception as exc:  # noqa: BLE001 - re-raised with the point named
                raise PointFailure(i, exc, out[:i].copy()) from exc
        return out

    def _recompute_bn(self) -> None:
        # A fixed batch size, not the tuned evaluation one: the statistics (and so the losses)
        # must not depend on which batch size happened to be fastest.
        batches = self.bn_data.batches(self.bn_batch_size, self.device)
        recompute_batchnorm(self.net, self._bn_modules, batches, self.bn_batches)

    def _evaluate_current(self, coords: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            if self._folded is not None:
                self._folded.refresh()  # the split's tail may hold folded layers too
            if self._layout is not None:
                self._layout.refresh()
            net = self._folded.net if self._folded is not None else self.net
            net = self._graph if self._graph is not None else net
            if self._split is not None:
                return self.reduction.point(self._split.batches(coords, self.batch_size))
            data = self.data.batches(self.batch_size, self.device)
            if self.copy_inputs:
                return self.reduction.point((net, x.clone(), y) for x, y in data)
            return self.reduction.point((net, x, y) for x, y in data)

    def _evaluate_vmap(self, coords: np.ndarray, decoded: np.ndarray | None, k: int) -> np.ndarray:
        def run(s: int, e: int) -> np.ndarray:
            if self.linear is not None:
                flat = self.linear.stacked(coords[s:e])
            else:
                assert decoded is not None
                flat = torch.as_tensor(decoded[s:e], dtype=self.dtype, device=self.device)
            args = (self.data, self.batch_size, self.device, self.reduction, self.copy_inputs)
            try:
                return evaluate_stacked(self.net, self.space, flat, *args)
            except Exception as exc:  # noqa: BLE001 - re-raised with the block's first point
                raise PointFailure(0, exc, np.empty((0, self.reduction.n_columns))) from exc

        return in_blocks(run, len(coords), self.reduction.n_columns, k)
