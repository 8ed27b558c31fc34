"""`check_critical_points`: each critical point of a picture, looked at in the full space.

A minimum of a 2D picture is a minimum of the loss restricted to a plane (or to the auto-encoder's
sheet). In the network's own parameter space the same point may be a saddle: curvature along
directions the picture never shows can be negative. For every persistent critical point of an
analysed field this decodes the point to parameters and reports

- the plane-restricted Hessian ``D^T H D`` from Hessian-vector products, ``D`` the decoder's
  Jacobian (exact for linear projectors, central differences for the auto-encoder and other
  non-linear decoders), next to the Hessian fitted to the field's values (the picture's own);
- the extreme full-space eigenvalues from ``steps`` Lanczos steps. Ritz values lie inside the
  spectrum, so a negative ``lambda_min`` proves negative curvature (the point is a saddle in the
  full space); a non-negative one means none was found within ``steps`` products;
- the gradient norm there (a picture's critical point is rarely a critical point of the network).

Examples
--------
>>> import torch
>>> from losstopo import (Grid, PlaneProjector, analyze, check_critical_points, evaluate,
...                       random_directions)
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
>>> data = (torch.randn(32, 3), torch.randint(0, 2, (32,)))
>>> proj = PlaneProjector(model, random_directions(model, n_components=2, seed=0))
>>> field = evaluate(model, data, "cross_entropy", proj, Grid.square(resolution=9), progress=False)
>>> check = check_critical_points(model, data, "cross_entropy", field, analyze(field),
...                               projector=proj, device="cpu")
>>> check.plane_hessian.shape[1:], check.jacobian
((2, 2), 'exact')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, InvalidTypeError, validate_int
from ..evaluate import as_decoder
from ..jsonable import to_jsonable
from ..projectors.base import LinearDecoder
from ..topology import TopologySummary, analyze
from ..topology.hessian_fit import fit_hessian
from .lanczos import lanczos
from .operator import hvp

#: Where :meth:`CriticalCheck.attach` keeps the check in a summary's ``attrs``.
CHECK_KEY = "full_space_check"

__all__ = [
    "CHECK_KEY",
    "CriticalCheck",
    "check_critical_points",
    "decoder_jacobian",
    "plane_hessian",
]


@dataclass(frozen=True)
class CriticalCheck:
    """Full-space checks of a field's persistent critical points, one row per point.

    Attributes
    ----------
    index, coords, type, value : the critical points (flat grid index, axis coordinates, TTK type,
        the field's value)
    loss : the loss recomputed at the decoded parameters
    plane_hessian : (m, d, d) ``D^T H D`` from Hessian-vector products
    fitted_hessian : (m, d, d) the quadratic fit of the field's values there
    lambda_max, lambda_min : (m,) extreme full-space Ritz values
    grad_norm : (m,) full-space gradient norm
    is_full_space_minimum : (m,) minima of the picture with no negative full-space curvature
        beyond ``tol * lambda_max`` (False for other types)
    jacobian : ``"exact"`` (linear projector) or ``"central differences"``
    """

    index: np.ndarray
    coords: np.ndarray
    type: np.ndarray
    value: np.ndarray
    loss: np.ndarray
    plane_hessian: np.ndarray
    fitted_hessian: np.ndarray
    lambda_max: np.ndarray
    lambda_min: np.ndarray
    grad_norm: np.ndarray
    is_full_space_minimum: np.ndarray
    jacobian: str
    n_hvp: int
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.index.size)

    @property
    def n_saddles_in_full_space(self) -> int:
        """Picture minima that have negative curvature in the full space."""
        return int(np.sum((self.type == 0) & ~self.is_full_space_minimum))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (non-finite numbers as ``None`` through ``to_jsonable``)."""
        return {
            "index": self.index.tolist(),
            "coords": self.coords.tolist(),
            "type": self.type.tolist(),
            "value": self.value.tolist(),
            "loss": self.loss.tolist(),
            "plane_hessian": self.plane_hessian.tolist(),
            "fitted_hessian": self.fitted_hessian.tolist(),
            "lambda_max": self.lambda_max.tolist(),
            "lambda_min": self.lambda_min.tolist(),
            "grad_norm": self.grad_norm.tolist(),
            "is_full_space_minimum": self.is_full_space_minimum.tolist(),
            "jacobian": self.jacobian,
            "n_hvp": int(self.n_hvp),
            "attrs": dict(self.attrs),
        }

    def attach(self, summary: TopologySummary) -> TopologySummary:
        """``summary`` with this check in its ``attrs["full_space_check"]``.

        Saved with the summary (``LossField.save``, ``store_topology``), written by the VTK
        export as point arrays of the critical points, and shown in the HTML report. Read it
        back with :meth:`from_summary`.
        """
        attrs = {**summary.attrs, CHECK_KEY: to_jsonable(self.to_dict())}
        return dataclasses.replace(summary, attrs=attrs)

    @classmethod
    def from_summary(cls, summary: TopologySummary) -> CriticalCheck | None:
        """The check attached to ``summary`` by :meth:`attach`, or ``None``."""
        stored = summary.attrs.get(CHECK_KEY)
        return None if stored is None else cls.from_dict(stored)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CriticalCheck:
        def arr(key: str, dtype: Any = np.float64) -> np.ndarray:
            return np.asarray(
                [np.nan if v is None else v for v in np.ravel(d[key])], dtype=dtype
            ).reshape(np.shape(d[key]))

        m = len(d["index"])
        dim = len(d["coords"][0]) if m else 0
        return cls(
            index=np.asarray(d["index"], dtype=np.int64),
            coords=arr("coords").reshape(m, dim),
            type=np.asarray(d["type"], dtype=np.int64),
            value=arr("value"),
            loss=arr("loss"),
            plane_hessian=arr("plane_hessian").reshape(m, dim, dim),
            fitted_hessian=arr("fitted_hessian").reshape(m, dim, dim),
            lambda_max=arr("lambda_max"),
            lambda_min=arr("lambda_min"),
            grad_norm=arr("grad_norm"),
            is_full_space_minimum=np.asarray(d["is_full_space_minimum"], dtype=bool),
            jacobian=str(d["jacobian"]),
            n_hvp=int(d["n_hvp"]),
            attrs=dict(d.get("attrs", {})),
        )


def decoder_jacobian(decoder: Any, coords: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, str]:
    """The ``(n_params, d)`` Jacobian of ``decoder`` at ``coords`` and how it was obtained.

    Exact for a :class:`~losstopo.projectors.LinearDecoder`; central differences with the
    per-axis ``step`` otherwise (second-order accurate in ``step``).
    """
    if isinstance(decoder, LinearDecoder):
        return np.asarray(decoder.components, dtype=np.float64).T, "exact"
    d = coords.size
    cols = []
    for j in range(d):
        e = np.zeros(d)
        e[j] = step[j]
        hi = np.asarray(decoder((coords + e)[None]), dtype=np.float64)[0]
        lo = np.asarray(decoder((coords - e)[None]), dtype=np.float64)[0]
        cols.append((hi - lo) / (2 * step[j]))
    return np.stack(cols, axis=1), "central differences"


def plane_hessian(op: Any, jacobian: np.ndarray) -> np.ndarray:
    """``D^T H D`` for the ``(n_params, d)`` Jacobian ``D`` (``d`` Hessian-vector products)."""
    cols = [op.matvec(jacobian[:, j]) for j in range(jacobian.shape[1])]
    out = jacobian.T @ np.stack(cols, axis=1)
    return (out + out.T) / 2


def check_critical_points(
    model: Any,
    data: Any,
    loss: Any,
    field: Any,
    topology: TopologySummary | None = None,
    *,
    projector: Any = None,
    steps: int = 30,
    tol: float = 1e-3,
    seed: int = 0,
    device: Any = None,
    batch_size: int | None = None,
    dtype: Any = None,
) -> CriticalCheck:
    """Check every persistent critical point of ``field``'s topology in the full space.

    ``topology``: the field's analysis (default ``field.topology``, else :func:`analyze` with
    defaults). ``projector``: the projector the field was evaluated with (its decoder maps grid
    coordinates to parameters); every decoding projector works (PHATE only embeds, so it
    cannot be checked). ``steps`` Lanczos products per point; a picture minimum counts as a
    full-space minimum when ``lambda_min >= -tol * lambda_max``.
    """
    if projector is None:
        projector = field.projector if getattr(field, "projector_state", None) else None
    if projector is None:
        raise InvalidParameterError(
            "check_critical_points needs the projector the field was evaluated with, to decode "
            "its critical points; pass projector=... (any decoding projector: plane, PCA, "
            "Kernel-PCA, UMAP, auto-encoder, Hessian)."
        )
    if not getattr(projector, "decodes", True):
        raise InvalidTypeError(
            f"{type(projector).__name__} only embeds and cannot decode grid points to parameters, "
            "so its picture cannot be checked in the full space; use a plane, PCA, Kernel-PCA, "
            "UMAP, auto-encoder or Hessian projector."
        )
    steps = validate_int(steps, "steps", low=2)
    topo = topology if topology is not None else getattr(field, "topology", None)
    if topo is None:
        topo = analyze(field)
    if not isinstance(topo, TopologySummary):
        raise InvalidTypeError(
            f"'topology' must be a TopologySummary (from analyze); got {type(topo).__name__}."
        )
    decoder = as_decoder(projector)
    op = hvp(model, data, loss, device=device, batch_size=batch_size, dtype=dtype)
    n_params = int(getattr(projector, "n_params_", op.shape[0]))
    if n_params != op.shape[0]:
        raise InvalidParameterError(
            f"The field's projector maps to {n_params} parameters but the model has "
            f"{op.shape[0]}; pass the model the field was computed for."
        )
    cp = topo.persistent
    axes = [np.asarray(a) for a in field.grid.axes.values()]
    spacing = np.array([np.mean(np.diff(a)) if a.size > 1 else 1.0 for a in axes])
    fitted = fit_hessian(np.asarray(field.values), axes, cp.index)
    m, d = len(cp.index), field.grid.ndim
    rows: dict[str, list[Any]] = {k: [] for k in ("loss", "ph", "lmax", "lmin", "gn")}
    how = "exact" if isinstance(decoder, LinearDecoder) else "central differences"
    start = 0
    for i in range(m):
        coords = np.asarray(cp.coords[i], dtype=np.float64)
        point = np.asarray(decoder(coords[None]), dtype=np.float64)[0]
        at = op.at(point)
        jac, how = decoder_jacobian(decoder, coords, 0.01 * spacing)
        rows["ph"].append(plane_hessian(at, jac))
        ritz = lanczos(at.matvec, at.shape[0], steps, seed=seed + i).ritz_values()
        rows["lmax"].append(float(ritz[-1]))
        rows["lmin"].append(float(ritz[0]))
        rows["gn"].append(float(np.linalg.norm(at.gradient())))
        rows["loss"].append(at.loss())
        start += at.n_hvp
    lam_max = np.asarray(rows["lmax"])
    lam_min = np.asarray(rows["lmin"])
    is_min = (np.asarray(cp.type) == 0) & (lam_min >= -tol * np.abs(lam_max))
    return CriticalCheck(
        index=np.asarray(cp.index, dtype=np.int64),
        coords=np.asarray(cp.coords, dtype=np.float64).reshape(m, d),
        type=np.asarray(cp.type, dtype=np.int64),
        value=np.asarray(cp.value, dtype=np.float64),
        loss=np.asarray(rows["loss"]),
        plane_hessian=np.asarray(rows["ph"]).reshape(m, d, d),
        fitted_hessian=np.asarray(fitted).reshape(m, d, d),
        lambda_max=lam_max,
        lambda_min=lam_min,
        grad_norm=np.asarray(rows["gn"]),
        is_full_space_minimum=is_min,
        jacobian=how,
        n_hvp=start,
        attrs={"lanczos_steps": steps, "tol": float(tol), "seed": int(seed)},
    )
