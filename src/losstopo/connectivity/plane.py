"""The plane through two models and a curve's bend (Garipov et al.'s figure), with both paths.

:func:`connecting_plane` gives a :class:`~losstopo.PlaneProjector` centred on model A with an
orthonormal basis: ``u1`` along ``B - A`` and ``u2`` the part of ``bend - A`` orthogonal to it,
so coordinates are distances in parameter space. :func:`plane_landscape` evaluates the loss on a
grid of that plane with the straight path and the curve drawn in it as the field's ``paths``.

Examples
--------
>>> import torch
>>> from losstopo.connectivity import connecting_plane, fit_curve
>>> from losstopo.datasets import synthetic_classification
>>> _ = torch.manual_seed(0)
>>> a, b = torch.nn.Linear(16, 3), torch.nn.Linear(16, 3)
>>> curve = fit_curve(a, b, synthetic_classification(n_samples=64), "cross_entropy", epochs=1,
...                   progress=False)
>>> plane = connecting_plane(curve)
>>> c = plane.components_
>>> bool(abs(c @ c.T - torch.eye(2).numpy()).max() < 1e-9)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InvalidParameterError, InvalidTypeError, validate_int
from ..evaluate import evaluate
from ..field import LossField, ProjectedPath
from ..grid import Grid
from ..projectors import PlaneProjector
from .curve import Curve
from .path import BN, has_running_stats
from .profile import PathProfile

__all__ = ["connecting_plane", "plane_landscape", "plane_paths"]


def connecting_plane(curve: Curve) -> PlaneProjector:
    """The plane through the curve's two endpoints and its bend, as an orthonormal projector.

    Coordinates: A at ``(0, 0)``, B at ``(|B - A|, 0)``, the bend above the axis.
    """
    if not isinstance(curve, Curve):
        raise InvalidTypeError(
            f"connecting_plane needs a Curve from fit_curve; got {type(curve).__name__}."
        )
    a, b, bend = curve.start, curve.end, curve.bend
    d1 = b - a
    n1 = float(np.linalg.norm(d1))
    if n1 == 0.0:
        raise InvalidParameterError(
            "The curve's two endpoints are the same model, so they span no plane; connect two "
            "different models."
        )
    u1 = d1 / n1
    d2 = bend - a
    d2 = d2 - (d2 @ u1) * u1
    d2 = d2 - (d2 @ u1) * u1  # twice: Gram-Schmidt loses orthogonality in float64 on long vectors
    n2 = float(np.linalg.norm(d2))
    if n2 <= 1e-12 * n1:
        raise InvalidParameterError(
            "The curve's bend lies on the straight line between its endpoints, so the three "
            "span no plane; train the curve (more epochs) first."
        )
    projector = PlaneProjector(a, np.stack([u1, d2 / n2]))
    return projector


def plane_paths(
    projector: PlaneProjector, profiles: Mapping[str, tuple[np.ndarray, PathProfile | None]]
) -> dict[str, ProjectedPath]:
    """Paths drawn in the plane: name -> (parameter vectors ``(n, n_params)``, their profile).

    Each path's ``step`` is its index along the path; its ``loss`` the profile's when given.
    """
    out = {}
    for name, (points, profile) in profiles.items():
        coords = projector.transform(np.asarray(points))
        loss = None if profile is None else profile.loss
        if loss is not None and len(loss) != len(coords):
            raise InvalidParameterError(
                f"Path {name!r} has {len(coords)} points but its profile {len(loss)} losses; "
                "sample both at the same positions."
            )
        out[name] = ProjectedPath(coords=coords, step=np.arange(len(coords)), loss=loss, run=name)
    return out


def plane_landscape(
    curve: Curve,
    data: Any,
    loss: Any,
    resolution: int = 21,
    margin: float = 0.2,
    profiles: Sequence[PathProfile] = (),
    bn: BN = "recompute",
    device: str | torch.device | None = None,
    progress: bool = False,
) -> LossField:
    """The loss on a grid of the connecting plane, with the straight path and the curve drawn.

    The grid covers both paths with ``margin`` (a fraction of the extent) on each side. Give the
    profiles of the straight path (``kind == "linear"``) and of the curve to have their losses on
    the drawn paths (both sampled at evenly spaced ``t``); else the paths are drawn with 41
    points and no loss. BatchNorm statistics are re-estimated at every grid point with
    ``bn="recompute"``.

    The curve holds the model (a copy of model A), so the call takes ``(curve, data, loss)``.
    """
    resolution = validate_int(resolution, "resolution", low=2)
    projector = connecting_plane(curve)
    by_kind = {p.kind: p for p in profiles}
    straight = by_kind.get("linear")
    bent = by_kind.get(curve.kind)
    n_line = len(straight) if straight is not None else 41
    n_curve = len(bent) if bent is not None else 41
    t_line = np.linspace(0.0, 1.0, n_line)[:, None]
    line_points = curve.start + t_line * (curve.end - curve.start)
    paths = plane_paths(
        projector,
        {"linear": (line_points, straight), curve.kind: (curve.points(n_curve), bent)},
    )
    coords = np.concatenate([p.coords for p in paths.values()])
    grid = Grid.around(coords, resolution=resolution, margin=margin, names=("u1", "u2"))
    use_bn: BN = "recompute" if bn == "recompute" and has_running_stats(curve.model) else "eval"
    field = evaluate(
        curve.model,
        data,
        loss,
        projector,
        grid,
        bn=use_bn,
        device=device,
        progress=progress,
        attrs={"plane": "connecting (A, B, bend)", "curve": curve.kind},
    )
    return field.with_paths(paths)
