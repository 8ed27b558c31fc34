"""A fitted projector as plain arrays and JSON, so a field file can carry what decodes it.

:func:`projector_state` takes a fitted projector apart into a :class:`ProjectorState` (numpy
arrays plus JSON-able metadata, no pickle) and :func:`restore_projector` builds it again; the
field file keeps the state in its ``/projector`` group (``docs/format.md``), and
``LossField.load(path).projector`` decodes grid coordinates back to parameters.

What is stored, by projector:

- linear projectors (plane, PCA, Hessian directions): the centre and the directions (and the
  buffers that ``dir_type="states"`` planes move), exactly;
- the auto-encoder: the encoder's and decoder's weights, the residual interpolant, the input
  layout; a ``"span"`` layout is ``mean + (X - mean)^T A y`` and needs the checkpoints ``X``
  themselves: they are stored when they take at most ``max_bytes`` (64 MiB by default), else the
  file records their shape, hash and (when known) where they are, and decoding asks for them;
- Kernel-PCA, UMAP and PHATE: not stored (their inverse maps live inside scikit-learn, umap-learn
  and phate objects that only pickle could save); the file says so and decoding asks for the
  refitted projector.

Examples
--------
>>> import numpy as np
>>> from losstopo.projectors import PCAProjector
>>> X = np.random.default_rng(0).normal(size=(6, 10))
>>> pca = PCAProjector(n_components=2).fit(X)
>>> state = projector_state(pca)
>>> state.stored, sorted(state.arrays)[:3]
(True, ['center_', 'components_', 'explained_variance_'])
>>> again = restore_projector(state)
>>> again.fingerprint() == pca.fingerprint()
True
>>> bool(np.array_equal(again.inverse_transform([[0.5, -1.0]]), pca.inverse_transform([[0.5, -1.0]])))
True
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InvalidParameterError, InvalidTypeError
from .autoencoder import AutoEncoderProjector
from .base import Projector, as_points
from .layouts import DenseBasis, SpanBasis
from .linear import LinearProjector
from .networks import ResidualInterpolant, mlp

#: Checkpoints of a span auto-encoder above this size are referenced, not stored.
MAX_CHECKPOINT_BYTES = 64 * 2**20
#: The projectors whose fitted state a field file carries.
STORABLE = "PlaneProjector, PCAProjector, HessianProjector or AutoEncoderProjector"


@dataclass(frozen=True, eq=False)
class ProjectorState:
    """A projector's class, fitted arrays and JSON metadata (``stored=False``: only the class).

    ``live`` is the projector itself when the state was taken from one in this process (so a
    field returned by :func:`losstopo.evaluate` decodes with the very object it was computed
    with); it is never written.
    """

    cls: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    live: Any = None

    @property
    def stored(self) -> bool:
        return bool(self.meta.get("stored", False))

    @property
    def name(self) -> str:
        return self.cls.rsplit(".", 1)[-1]


def _json_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)) and all(isinstance(x, (int, float, str)) for x in value):
        return list(value)
    raise TypeError


def _plain_params(projector: Projector) -> dict[str, Any]:
    out = {}
    for key, value in projector.get_params(deep=False).items():
        try:
            out[key] = _json_value(value)
        except TypeError:
            out[key] = None  # a model, data or array given to the constructor: not kept
    return out


def checkpoints_hash(points: np.ndarray) -> str:
    """A short hash of checkpoint rows (to recognise them when they are given back)."""
    arr = np.ascontiguousarray(points)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


def projector_state(
    projector: Any, *, max_bytes: int = MAX_CHECKPOINT_BYTES, source: str | None = None
) -> ProjectorState:
    """Take a fitted projector apart into arrays and JSON (``stored=False`` where it cannot be).

    ``source`` records where the checkpoints of a span auto-encoder are when they are larger
    than ``max_bytes`` and so not stored.
    """
    cls = f"{type(projector).__module__}.{type(projector).__qualname__}"
    if isinstance(projector, LinearProjector):
        arrays, meta = _linear_state(projector)
    elif isinstance(projector, AutoEncoderProjector):
        arrays, meta = _autoencoder_state(projector, max_bytes, source)
    else:
        reason = (
            f"{type(projector).__name__}'s fitted state is not stored in field files"
            if isinstance(projector, Projector)
            else f"a {type(projector).__name__} is not a losstopo projector"
        )
        return ProjectorState(cls, meta={"stored": False, "reason": reason}, live=projector)
    meta["stored"] = True
    meta["fingerprint"] = projector.fingerprint()
    return ProjectorState(cls, arrays, meta, live=projector)


def _linear_state(p: LinearProjector) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {}
    fitted: dict[str, Any] = {}
    for key, value in vars(p).items():
        if not key.endswith("_") or key.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            arrays[key] = value
        else:
            try:
                fitted[key] = _json_value(value)
            except TypeError:
                pass
    return arrays, {"params": _plain_params(p), "fitted": fitted}


def _autoencoder_state(
    p: AutoEncoderProjector, max_bytes: int, source: str | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    p.check_fitted()
    arrays: dict[str, np.ndarray] = {}
    for net in ("encoder", "decoder"):
        for key, t in getattr(p, f"{net}_").state_dict().items():
            arrays[f"{net}.{key}"] = t.detach().cpu().numpy()
    arrays["out_scale"] = np.asarray(p._out_scale)
    arrays["enc_mean"], arrays["enc_std"] = np.asarray(p._enc_mean), np.asarray(p._enc_std)
    arrays["codes"] = np.asarray(p.codes_)
    arrays["target"] = p._target.detach().cpu().numpy()
    arrays["anchor_index"] = np.asarray(p.anchors_[0], dtype=np.int64)
    arrays["anchor_position"] = np.asarray(p.anchors_[1], dtype=np.float64)
    if p._residual is not None:
        arrays["residual_weights"] = p._residual.w.cpu().numpy()
        arrays["residual_poly"] = p._residual.poly.cpu().numpy()
    for key, values in p.history_.items():
        arrays[f"history.{key}"] = np.asarray(values, dtype=np.float64)
    layout = p._basis
    arrays["layout_mean"] = layout.mean
    checkpoints: dict[str, Any] = {}
    if isinstance(layout, SpanBasis):
        arrays["layout_A"], arrays["layout_evals"] = layout.A, layout.evals
        arrays["layout_coords"] = layout.coords
        points = layout.points
        checkpoints = {
            "shape": list(points.shape),
            "dtype": points.dtype.str,
            "sha256": checkpoints_hash(points),
            "stored": bool(points.nbytes <= max_bytes),
            "source": source,
        }
        if checkpoints["stored"]:
            arrays["checkpoints"] = points
    else:
        arrays["layout_std"] = layout.std
    fitted = {
        "basis_": p.basis_,
        "n_params_": int(p.n_params_),
        "n_components_": int(p.n_components_),
        "random_state_": int(p.random_state_),
        "n_epochs_": int(p.n_epochs_),
    }
    return arrays, {"params": _plain_params(p), "fitted": fitted, "checkpoints": checkpoints}


# ---------------------------------------------------------------------------------- restoring
def _projector_class(path: str) -> type[Projector]:
    module, _, name = path.rpartition(".")
    if not module.startswith("losstopo."):
        raise InvalidTypeError(
            f"The stored projector class {path!r} is not one of losstopo's; only losstopo's "
            f"projectors are rebuilt from field files ({STORABLE})."
        )
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InvalidTypeError(
            f"The stored projector class {path!r} does not exist in this losstopo version; "
            "recompute the field with it, or pass the projector explicitly."
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Projector)):
        raise InvalidTypeError(f"The stored class {path!r} is not a losstopo projector.")
    return cls


def _blank(cls: type[Projector], params: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    for key in cls._get_param_names():
        setattr(obj, key, params.get(key))
    return obj


def restore_projector(state: ProjectorState, checkpoints: Any = None) -> Any:
    """The fitted projector described by ``state`` (the live one when the state has it).

    ``checkpoints`` (a Trajectory or an array of rows): the fitted checkpoints of a span
    auto-encoder whose file does not store them; checked against the recorded hash.
    """
    if state.live is not None:
        return state.live
    if not state.stored:
        raise InvalidParameterError(
            f"The field was evaluated with {state.name}, and "
            f"{state.meta.get('reason', 'its state is not stored')}; refit the projector on the "
            f"same checkpoints and pass it as projector=... (files carry a {STORABLE})."
        )
    cls = _projector_class(state.cls)
    meta = state.meta
    if issubclass(cls, LinearProjector):
        obj = _blank(cls, meta.get("params", {}))
        for key, value in meta.get("fitted", {}).items():
            setattr(obj, key, tuple(value) if isinstance(value, list) else value)
        arrays = dict(state.arrays)
        center, components = arrays.pop("center_"), arrays.pop("components_")
        for key, value in arrays.items():
            setattr(obj, key, value)
        obj._set_basis(center, components)
    elif issubclass(cls, AutoEncoderProjector):
        obj = _restore_autoencoder(cls, state, checkpoints)
    else:  # pragma: no cover - projector_state never marks others as stored
        raise InvalidTypeError(f"No way to rebuild a stored {state.name}.")
    expected = meta.get("fingerprint")
    if expected is not None and obj.fingerprint() != expected:
        raise InvalidParameterError(
            f"The {state.name} rebuilt from the field file does not reproduce the field's "
            f"projector (fingerprint {obj.fingerprint()}, stored {expected}); the file is damaged "
            "or its checkpoints differ: recompute the field."
        )
    return obj


def _span_points(state: ProjectorState, checkpoints: Any) -> np.ndarray:
    info = state.meta.get("checkpoints", {})
    if "checkpoints" in state.arrays:
        return state.arrays["checkpoints"]
    shape = tuple(info.get("shape", ()))
    where = f" (recorded at {info['source']})" if info.get("source") else ""
    if checkpoints is None:
        raise InvalidParameterError(
            f"The auto-encoder of this field decodes through the span of its {shape[0]} fitted "
            f"checkpoints of {shape[1]} parameters, which the file does not store (they are "
            f"larger than its limit); pass them: field.restore_projector(checkpoints=...) with "
            f"the same trajectory{where}."
        )
    points = as_points(checkpoints, "checkpoints")
    if points.dtype.str != info.get("dtype"):
        points = points.astype(np.dtype(info.get("dtype", "<f8")))
    if points.shape != shape or checkpoints_hash(points) != info.get("sha256"):
        raise InvalidParameterError(
            f"The checkpoints given ({points.shape[0]} x {points.shape[1]}) are not the ones "
            f"the field's auto-encoder was fitted on ({shape[0]} x {shape[1]}, hash "
            f"{info.get('sha256')}); pass that trajectory{where}."
        )
    return points


def _restore_autoencoder(
    cls: type[AutoEncoderProjector], state: ProjectorState, checkpoints: Any
) -> AutoEncoderProjector:
    a, meta = state.arrays, state.meta
    obj = _blank(cls, meta.get("params", {}))
    for key, value in meta.get("fitted", {}).items():
        setattr(obj, key, value)
    dev, dt = torch.device("cpu"), torch.float64
    hidden = [int(h) for h in meta["params"]["hidden"]]
    dim, k = a["target"].shape[1], int(meta["fitted"]["n_components_"])
    obj.encoder_ = mlp([dim, *hidden, k]).to(dev, dt)
    obj.decoder_ = mlp([k, *hidden[::-1], dim]).to(dev, dt)
    for net in ("encoder", "decoder"):
        prefix = f"{net}."
        weights = {
            key[len(prefix) :]: torch.as_tensor(v, dtype=dt)
            for key, v in a.items()
            if key.startswith(prefix)
        }
        getattr(obj, f"{net}_").load_state_dict(weights)
        getattr(obj, f"{net}_").requires_grad_(False)
    obj._dev, obj._dt = dev, dt
    obj._out_scale, obj._enc_mean, obj._enc_std = a["out_scale"], a["enc_mean"], a["enc_std"]
    obj.codes_ = a["codes"]
    obj._target = torch.as_tensor(a["target"], dtype=dt)
    obj.anchors_ = (a["anchor_index"], a["anchor_position"])
    obj.history_ = {
        key.split(".", 1)[1]: v.tolist() for key, v in a.items() if key.startswith("history.")
    }
    obj._residual = None
    if "residual_weights" in a:
        obj._residual = ResidualInterpolant.from_solution(
            torch.as_tensor(a["codes"], dtype=dt),
            torch.as_tensor(a["residual_weights"], dtype=dt),
            torch.as_tensor(a["residual_poly"], dtype=dt),
        )
    if meta["fitted"]["basis_"] == "span":
        obj._basis = SpanBasis.from_arrays(
            _span_points(state, checkpoints),
            a["layout_mean"],
            a["layout_A"],
            a["layout_evals"],
            a["layout_coords"],
        )
    else:
        obj._basis = DenseBasis.from_arrays(a["layout_mean"], a["layout_std"])
    return obj  # type: ignore[no-any-return]
