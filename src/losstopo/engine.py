"""The per-point evaluator behind :func:`losstopo.evaluate`.

It owns a private copy of the model whose parameters are views into one flat buffer; setting a
grid point is one fresh ``center + sum_i a_i d_i`` into that buffer (no cumulative walking, so
no rounding drift), and the caller's model is never touched.

Fast paths:

- *first-layer split*: for a linear projector and an ``nn.Sequential`` whose first parametrised
  layer is ``Linear``/``Conv``, that layer's output is affine in the coordinates,
  ``W(a)x = W0 x + sum_i a_i D_i x``; the terms are computed once and combined per point.
- *vmap*: ``K`` points at once through ``torch.func.functional_call`` + ``vmap`` (for GPUs).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._fold import fold_batchnorm, is_plain_layer
from .data import EvalData, LossFn
from .errors import InvalidTypeError
from .space import ParameterSpace

SUPPORTED_METRICS = ("accuracy",)

#: Grids with fewer points than this skip the batch-size measurement (it would cost more than it saves).
TUNE_MIN_POINTS = 50


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class PointFailure(Exception):
    """The model raised at a point; carries the results of the points before it."""

    def __init__(self, position: int, error: BaseException, done: np.ndarray):
        super().__init__(str(error))
        self.position = position
        self.error = error
        self.done = done


class Evaluator:
    """Evaluate loss and metrics at points of parameter space given as latent coordinates."""

    def __init__(
        self,
        model: nn.Module,
        space: ParameterSpace,
        projector: Any,
        data: EvalData,
        loss_fn: LossFn,
        loss_name: str,
        metrics: Sequence[str],
        device: torch.device,
        bn: str = "eval",
        bn_data: EvalData | None = None,
        bn_batches: int = 4,
        bn_batch_size: int = 256,
        batch_size: int | None = None,
        first_layer: bool = True,
        memory_cap: int = 2**30,
    ):
        self.space = space
        self.projector = projector
        self.data = data
        self.loss_fn = loss_fn
        self.loss_name = loss_name
        self.metrics = tuple(metrics)
        self.device = device
        self.bn = bn
        self.bn_data = bn_data or data
        self.bn_batches = bn_batches
        self.bn_batch_size = bn_batch_size
        self.memory_cap = memory_cap
        # Private copy: parameters become views of one flat buffer on the device.
        try:
            self.net = copy.deepcopy(model).to(device)
        except RuntimeError as exc:
            raise InvalidTypeError(
                f"The model cannot be copied for evaluation ({exc}). Remove torch.nn.utils."
                "weight_norm hooks (use torch.nn.utils.parametrizations.weight_norm) or other "
                "non-leaf parameters."
            ) from exc
        self.net.eval()
        ref = space.flatten(self.net)
        self.dtype = ref.dtype
        self.flat = ref.detach().clone()
        params = dict(self.net.named_parameters())
        for name, view in space.unflatten(self.flat).items():
            params[name].requires_grad_(False)
            params[name].data = view
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._bn_modules = [
            m for m in self.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
        self.linear = bool(getattr(projector, "linear", False))
        if self.linear:
            self.center = torch.as_tensor(
                np.asarray(projector.center_), dtype=self.dtype, device=device
            )
            self.components = torch.as_tensor(
                np.asarray(projector.components_), dtype=self.dtype, device=device
            )
        # BatchNorm without running statistics normalises with each batch's own statistics even
        # in eval mode: the values depend on the batch size, so use one batch of all the data.
        self._batch_dependent = any(
            m.running_mean is None
            for m in self.net.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
        )
        self._tune = batch_size is None and not self._batch_dependent
        if batch_size is None and self._batch_dependent:
            batch_size = data.n_samples
        self.batch_size = batch_size or min(data.n_samples, 4096)
        self._split: _FirstLayerSplit | None = None
        self._first_layer_requested = first_layer
        # Eval-mode BatchNorm folded into the layer before it (refreshed at every point).
        self._folded = fold_batchnorm(self.net) if bn == "eval" else None

    # ------------------------------------------------------------------ setup
    def prepare(self, n_points: int) -> None:
        """Choose the batch size and whether to use the first-layer split, by timing whole points.

        Each configuration is timed in a steady loop (the first pass after a batch-size change is
        several times slower than the next ones and is not timed); a larger batch wins ties
        within 2 %.
        """
        use_split = (
            self._first_layer_requested
            and self.linear
            and self.bn != "recompute"
            and self.data.resident
        )
        n = self.data.n_samples
        candidates = sorted({min(n, b) for b in (n, 2048, 1024, 512, 256, 128)}, reverse=True)
        if not (self._tune and self.data.resident and n_points >= TUNE_MIN_POINTS):
            self.batch_size = min(n, 1024) if self._tune else self.batch_size
            self._split = _FirstLayerSplit.build(self) if use_split else None
            return
        # Timed at a point off the centre, so the split's combination of terms is timed too.
        probe = np.full(self._n_components(), 0.5 if self.linear else 0.0)
        decoded = None if self.linear else np.asarray(self.projector.inverse_transform(probe[None]))
        self.set_point(probe, None if decoded is None else decoded[0])

        def measure(bs: int, split: bool) -> tuple[float, _FirstLayerSplit | None]:
            self.batch_size = bs
            self._split = _FirstLayerSplit.build(self) if split else None
            self._evaluate_current(probe)  # warm-up, not timed
            return min(_timed(lambda: self._evaluate_current(probe)) for _ in range(3)), self._split

        # For each configuration (with the first-layer split when it applies, and without), batch
        # sizes from large to small, stopping after two in a row that are slower than that
        # configuration's best; the fastest overall wins (a larger batch wins ties within 2 %).
        best_time, best_bs, best_split = float("inf"), candidates[0], None
        for split in (True, False) if use_split else (False,):
            config_best, worse = float("inf"), 0
            for bs in candidates:
                elapsed, split_obj = measure(bs, split)
                if split and split_obj is None:
                    break  # the split does not fit in memory at this size
                if elapsed < config_best * 0.98:
                    config_best, worse = elapsed, 0
                    if elapsed < best_time * 0.98:
                        best_time, best_bs, best_split = elapsed, bs, split_obj
                else:
                    worse += 1
                    if worse == 2:
                        break
        self.batch_size = best_bs
        self._split = best_split

    @property
    def engine_name(self) -> str:
        name = "sequential+first-layer-split" if self._split is not None else "sequential"
        return name + ("+bn-folded" if self._folded is not None else "")

    def _n_components(self) -> int:
        return int(getattr(self.projector, "n_components_", 1))

    # ------------------------------------------------------------------ points
    def set_point(self, coords: np.ndarray, decoded: np.ndarray | None = None) -> None:
        """Write the parameters of one point into the flat buffer, fresh from the centre."""
        if self.linear:
            fresh = True  # the first term writes center + a d straight into the buffer
            for k, a in enumerate(coords):
                if a != 0.0:
                    if fresh:
                        torch.add(self.center, self.components[k], alpha=float(a), out=self.flat)
                        fresh = False
                    else:
                        self.flat.add_(self.components[k], alpha=float(a))
            if fresh:
                self.flat.copy_(self.center)
        else:
            assert decoded is not None
            self.flat.copy_(torch.as_tensor(decoded, dtype=self.dtype))

    def evaluate(
        self, coords: np.ndarray, mode: str = "sequential", vmap_size: int = 8
    ) -> np.ndarray:
        """Loss and metrics at each row of ``coords``: array (n, 1 + n_metrics).

        A non-linear projector decodes the points in blocks of at most ``decode_bytes`` so a
        large model never holds a whole chunk of decoded parameter vectors at once.
        """
        coords = np.atleast_2d(np.asarray(coords, dtype=np.float64))
        out = np.empty((len(coords), 1 + len(self.metrics)))
        block = (
            len(coords) if self.linear else max(1, self.decode_bytes // (8 * self.space.n_params))
        )
        if mode == "vmap":
            block = max(vmap_size, block - block % vmap_size)
        for start in range(0, len(coords), block):
            part = coords[start : start + block]
            decoded = None if self.linear else np.asarray(self.projector.inverse_transform(part))
            try:
                if mode == "vmap":
                    out[start : start + len(part)] = self._evaluate_vmap(part, decoded, vmap_size)
                else:
                    out[start : start + len(part)] = self._evaluate_sequential(part, decoded)
            except PointFailure as exc:
                raise PointFailure(
                    start + exc.position, exc.error, out[: start + exc.position].copy()
                ) from exc
        return out

    #: Upper bound on the bytes of decoded parameter vectors held at once (non-linear projectors).
    decode_bytes = 2**28

    def _evaluate_sequential(self, coords: np.ndarray, decoded: np.ndarray | None) -> np.ndarray:
        out = np.empty((len(coords), 1 + len(self.metrics)))
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
        saved = [(m, m.momentum) for m in self._bn_modules]
        for m in self._bn_modules:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        self.net.train()
        with torch.no_grad():
            # A fixed batch size, not the tuned evaluation one: the statistics (and so the losses)
            # must not depend on which batch size happened to be fastest.
            for i, (x, _) in enumerate(self.bn_data.batches(self.bn_batch_size, self.device)):
                if i >= self.bn_batches:
                    break
                self.net(x)
        self.net.eval()
        for m, momentum in saved:
            m.momentum = momentum

    def _evaluate_current(self, coords: np.ndarray) -> np.ndarray:
        losses: list[torch.Tensor] = []
        hits: list[torch.Tensor] = []
        fused = self.loss_name == "cross_entropy" and bool(self.metrics)
        with torch.inference_mode():
            net = self.net
            if self._folded is not None:
                self._folded.refresh()  # the split's tail may hold folded layers too
                net = self._folded.net
            if self._split is not None:
                batches = self._split.batches(coords)
            else:
                batches = ((net, x, y) for x, y in self.data.batches(self.batch_size, self.device))
            for fn, x, y in batches:
                out = fn(x)
                if fused and y.dtype == torch.int64 and out.dim() == 2:
                    loss, hit = _cross_entropy_and_hits(out, y)
                    losses.append(loss)
                    hits.append(hit)
                    continue
                losses.append(self._loss_sum(out, y))
                if self.metrics:
                    hits.append((out.argmax(dim=-1) == y).sum())
            total = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
            if self.metrics:
                correct = hits[0] if len(hits) == 1 else torch.stack(hits).sum()
                sums = torch.stack((total, correct.to(total.dtype))).tolist()  # one sync per point
            else:
                sums = [total.item()]
        result = [sums[0] / self.data.n_samples]
        if self.metrics:
            result.append(sums[1] / self.data.n_samples)
        return np.asarray(result)

    def _loss_sum(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "cross_entropy":
            if y.dtype != torch.int64 or out.dim() != 2:
                return F.cross_entropy(out, y, reduction="sum").double()
            # -log softmax(out)[y] per sample, summed: fewer kernels than cross_entropy
            per_sample = torch.logsumexp(out, dim=1) - out.gather(1, y[:, None]).squeeze(1)
            return per_sample.sum(dtype=torch.float64)
        if self.loss_name == "mse":
            return F.mse_loss(out, y, reduction="sum").double() / max(out[0].numel(), 1)
        return self.loss_fn(out, y).double() * len(y)

    # ------------------------------------------------------------------ vmap
    def _evaluate_vmap(self, coords: np.ndarray, decoded: np.ndarray | None, k: int) -> np.ndarray:
        from torch.func import functional_call, vmap

        buffers = {n: b for n, b in self.net.named_buffers()}
        names = self.space.names
        out = np.empty((len(coords), 1 + len(self.metrics)))
        for start in range(0, len(coords), k):
            block = coords[start : start + k]
            if self.linear:
                a = torch.as_tensor(block, dtype=self.dtype, device=self.device)
                flat = self.center[None, :] + a @ self.components
            else:
                assert decoded is not None
                flat = torch.as_tensor(
                    decoded[start : start + k], dtype=self.dtype, device=self.device
                )
            params = {
                n: flat[:, o : o + m].reshape(len(block), *s)
                for n, o, m, s in zip(
                    names, self.space.offsets, self.space.numels, self.space.shapes, strict=True
                )
            }

            def call(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
                return functional_call(self.net, (p, buffers), (x,))

            total = torch.zeros(len(block), dtype=torch.float64, device=self.device)
            correct = torch.zeros(len(block), dtype=torch.float64, device=self.device)
            try:
                with torch.inference_mode():
                    for x, y in self.data.batches(self.batch_size, self.device):
                        outs = vmap(call, in_dims=(0, None))(params, x)
                        total += torch.stack([self._loss_sum(o, y) for o in outs])
                        if self.metrics:
                            correct += (outs.argmax(dim=-1) == y[None]).sum(dim=1).double()
            except Exception as exc:  # noqa: BLE001
                raise PointFailure(start, exc, out[:start].copy()) from exc
            out[start : start + len(block), 0] = (total / self.data.n_samples).cpu().numpy()
            if self.metrics:
                out[start : start + len(block), 1] = (correct / self.data.n_samples).cpu().numpy()
        return out


def _cross_entropy_and_hits(
    out: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy (float64) and the number of correct argmax predictions, in one pass.

    One row maximum serves both the stable log-sum-exp and the prediction (the first maximal
    index, as ``argmax``): half the kernels of ``logsumexp`` plus ``argmax`` on small outputs.
    A ``+inf`` logit gives NaN, as ``torch.nn.functional.cross_entropy`` does.
    """
    top, predicted = out.max(dim=1)
    lse = (out - top[:, None]).exp_().sum(dim=1).log_().add_(top)
    loss = (lse - out.gather(1, y[:, None]).squeeze(1)).sum(dtype=torch.float64)
    return loss, (predicted == y).sum()


class _FirstLayerSplit:
    """Precomputed first-layer terms ``W0 x + b0`` and ``D_i x + db_i`` for a linear projector."""

    def __init__(
        self,
        layer_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
        tail: nn.Sequential,
        terms: list[tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]],
    ):
        self.layer_fn = layer_fn
        self.tail = tail
        self.terms = terms  # per batch: (base, [term_i], targets)
        mods = list(tail)  # not children(): a module used twice must stay twice
        self.relu_first = bool(mods) and type(mods[0]) is nn.ReLU
        self.tail_after_relu = nn.Sequential(*mods[1:]) if self.relu_first else tail

    @classmethod
    def build(cls, ev: Evaluator) -> _FirstLayerSplit | None:
        net = ev._folded.net if ev._folded is not None else ev.net
        if not isinstance(net, nn.Sequential):
            return None
        mods = list(net)
        first = next((i for i, m in enumerate(mods) if any(True for _ in m.parameters())), None)
        if first is None or first == len(mods) - 1:
            return None
        if any(any(True for _ in m.buffers()) for m in mods[:first]):
            return None
        layer = mods[first]
        if not is_plain_layer(layer):
            return None  # a subclass with its own forward, hooks or parametrizations
        if type(layer) is nn.Linear:

            def layer_fn(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
                return F.linear(z, w, b)
        elif isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and layer.padding_mode == "zeros":
            conv = layer  # exact type (is_plain_layer)

            def layer_fn(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
                return conv._conv_forward(z, w, b)
        else:
            return None
        prefix = nn.Sequential(*mods[:first])
        tail = nn.Sequential(*mods[first + 1 :])
        pname = {id(p): n for n, p in ev.net.named_parameters()}  # names of the original
        if id(layer.weight) not in pname or (
            layer.bias is not None and id(layer.bias) not in pname
        ):
            return None  # e.g. a parametrized weight (weight_norm): computed, not a parameter
        w_name = pname[id(layer.weight)]
        b_name = pname[id(layer.bias)] if layer.bias is not None else None
        slices = ev.space.slices()
        if w_name not in slices:
            return None
        shape_w = layer.weight.shape

        def part(vec: torch.Tensor, name: str | None, shape: Any) -> torch.Tensor | None:
            if name is None:
                return None
            if name in slices:
                return vec[slices[name]].view(shape)
            return None

        center_w = ev.center[slices[w_name]].view(shape_w)
        center_b = part(ev.center, b_name, (shape_w[0],))
        if center_b is None and layer.bias is not None:
            center_b = layer.bias.detach().clone()  # bias excluded from the space: stays fixed
        dirs = [
            (
                ev.components[k][slices[w_name]].view(shape_w),
                part(ev.components[k], b_name, (shape_w[0],)),
            )
            for k in range(ev.components.shape[0])
        ]
        terms = []
        nbytes = 0
        with torch.inference_mode():
            for x, y in ev.data.batches(ev.batch_size, ev.device):
                z = prefix(x)
                base = layer_fn(z, center_w, center_b)
                extra = [layer_fn(z, dw, db) for dw, db in dirs]
                nbytes += base.element_size() * base.numel() * (1 + len(extra))
                if nbytes > ev.memory_cap:
                    return None
                terms.append((base, extra, y))
        return cls(layer_fn, tail, terms)

    def batches(self, coords: np.ndarray) -> Any:
        for base, extra, y in self.terms:
            h: torch.Tensor | None = None
            for a, term in zip(coords, extra, strict=True):
                if a != 0.0:
                    if h is None:
                        h = torch.add(base, term, alpha=float(a))
                    else:
                        h.add_(term, alpha=float(a))
            if h is None:
                # the centre: the tail may work in place (ReLU(inplace=True)), never on the cache
                yield self.tail, base.clone(), y
            elif self.relu_first:
                # h is a private buffer: the tail's leading ReLU can run in place.
                yield self.tail_after_relu, h.relu_(), y
            else:
                yield self.tail, h, y
