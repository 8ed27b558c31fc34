"""`verify_topology`: is each basin of a picture a basin of the network, or a fold of the projection?

A 2D (or 3D) loss picture is the loss restricted to a sheet of parameter space: a plane for the
linear projectors, a curved sheet for the auto-encoder and other non-linear decoders. Its topology
(minima, the saddles where basins merge, their persistence) describes the sheet, not the network.
For every persistent minimum of the picture's simplified join tree this decodes the minimum to
parameters and measures, in the full parameter space:

- the extreme Hessian eigenvalues there (``steps`` Lanczos products: a negative ``lambda_min``
  proves the picture's minimum is a saddle of the network), the loss and the gradient norm;
- the distance to the nearest fitted checkpoint, when the ``trajectory`` is given.

For every saddle where a branch of the join tree (a basin with minimum ``m_i``) merges into its
parent branch (minimum ``m_p``) it compares the picture's barrier (saddle value minus the higher
of the two minima's values) with the barrier along the straight segment between the two decoded
minima in the full space (``n_points`` evaluations of the loss). The separation is

- ``"confirmed"`` when the straight barrier is at least ``fraction`` times the picture's,
- ``"overstated"`` when it is lower but still a barrier (above the topology's simplification
  threshold): two basins of the network, whose barrier the picture exaggerates,
- ``"artifact"`` when the straight segment has no barrier: the sheet bends around a valley that
  the network does not have between those two points,
- ``"curve-connected"`` (with ``curve=True``) when a straight barrier exists but a curve between
  the two decoded minima (``curve_fn``) brings it below ``fraction`` times the lower of the
  picture's and the straight segment's barriers.

For a **linear** projector (plane, PCA, Hessian directions) the straight segment between two
decoded minima lies inside the plane: a plane's separations can only be contradicted by curves,
or by a finer grid (see the note in :func:`verify_topology`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import InvalidParameterError, InvalidTypeError, validate_float, validate_int
from ..evaluate import as_decoder, evaluate_points
from ..hessian import hvp, lanczos
from ..space import ParameterSpace
from ..topology import TopologySummary, analyze
from .result import TopologyCheck

#: A straight-segment barrier at most this high (or the topology's simplification threshold, if
#: higher) is no barrier.
NO_BARRIER = 1e-9
#: The projectors whose pictures can be verified (they decode grid points to parameters).
DECODING = "plane, PCA, Kernel-PCA, UMAP, auto-encoder or Hessian projector (or a decoder callable)"


def _projector(field: Any, projector: Any) -> Any:
    if projector is None:
        projector = field.projector if getattr(field, "projector_state", None) else None
    if projector is None:
        raise InvalidParameterError(
            "verify_topology needs the projector the field was evaluated with, to decode its "
            f"minima to parameters, and this field carries none; pass projector=... (a {DECODING})."
        )
    if not getattr(projector, "decodes", True):
        raise InvalidTypeError(
            f"{type(projector).__name__} only embeds and cannot decode grid points to parameters, "
            f"so its picture cannot be verified in the full space; use a {DECODING}."
        )
    return projector


def _topology(field: Any, topology: Any) -> TopologySummary:
    topo = topology if topology is not None else getattr(field, "topology", None)
    if topo is None:
        topo = analyze(field)
    if not isinstance(topo, TopologySummary):
        raise InvalidTypeError(
            f"'topology' must be a TopologySummary (from analyze); got {type(topo).__name__}."
        )
    if topo.join_tree is None:
        raise InvalidParameterError(
            "The topology holds no join tree (a summary written by losstopo 0.1); analyse the "
            "field again with losstopo.analyze(field) and pass that."
        )
    if tuple(topo.shape) != tuple(field.grid.shape):
        raise InvalidParameterError(
            f"The topology is of a {topo.shape} field but the field's grid is "
            f"{field.grid.shape}; pass the summary analyze(field) returned for this field."
        )
    return topo


def _coords(field: Any, index: np.ndarray) -> np.ndarray:
    coords = field.grid.coords_of(index) if index.size else np.zeros((0, field.grid.ndim))
    return np.asarray(coords, dtype=np.float64).reshape(index.size, field.grid.ndim)


def _checkpoints(trajectory: Any, n_params: int) -> np.ndarray | None:
    if trajectory is None:
        return None
    rows = np.asarray(getattr(trajectory, "points", trajectory), dtype=np.float64)
    rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
    if rows.ndim != 2 or rows.shape[1] != n_params:
        raise InvalidParameterError(
            f"The trajectory has rows of shape {rows.shape[1:]} but the model has {n_params} "
            "parameters; pass the checkpoints the projector was fitted on."
        )
    return rows


def _name(projector: Any) -> str:
    describe = getattr(projector, "describe", None)
    name = describe().get("name") if callable(describe) else None
    return str(name or type(projector).__name__)


def verify_topology(
    model: Any,
    data: Any,
    loss: Any,
    field: Any,
    topology: TopologySummary | None = None,
    *,
    projector: Any = None,
    trajectory: Any = None,
    curve: bool = False,
    n_points: int = 21,
    fraction: float = 0.5,
    steps: int = 20,
    tol: float = 1e-3,
    seed: int = 0,
    curve_fn: Callable[[np.ndarray, np.ndarray], float] | None = None,
    curve_epochs: int = 20,
    device: Any = None,
    batch_size: int | None = None,
) -> TopologyCheck:
    """Check every persistent basin and separation of ``field``'s picture in the full space.

    Parameters
    ----------
    model, data, loss : the model the field was computed for (its architecture; its weights are
        not used and not changed), the evaluation data and the loss.
    field : LossField
    topology : the field's analysis (default ``field.topology``, else :func:`~losstopo.analyze`
        with defaults); its simplified join tree gives the minima and separations.
    projector : the projector (or decoder callable) the field was evaluated with; every decoding
        projector works, PHATE only embeds.
    trajectory : the fitted checkpoints (a Trajectory or an array), for the distance of each
        minimum to the nearest one (NaN without).
    curve, curve_fn : with ``curve=True``, each confirmed separation is also tried along a curve:
        ``curve_fn(params_a, params_b)`` gets the two decoded minima (flat float64 vectors) and
        returns the loss barrier along its curve (maximum excess over the higher endpoint).
        Without ``curve_fn`` a quadratic Bezier curve is trained between them
        (:func:`bezier_barrier`: :func:`losstopo.fit_curve`, ``curve_epochs`` epochs on ``data``).
    n_points : evaluations along each straight segment (endpoints included).
    fraction : a separation is confirmed when the full-space barrier is at least ``fraction``
        times the picture's.
    steps, tol, seed : Lanczos products per minimum; a minimum is a full-space minimum when
        ``lambda_min >= -tol * |lambda_max|``; start-vector seed.
    device, batch_size : as for :func:`~losstopo.evaluate_points`.

    Notes
    -----
    For a linear projector the straight segment between two decoded minima is the image of the
    straight segment between them in the picture, so it lies inside the plane: it must climb over
    the plane's own (continuous) barrier between them. A plane can hide structure but cannot
    invent a barrier between its own points; only a curve (``curve=True``) can contradict it.
    What a plane's check can still find is resolution: the picture's barrier is read on grid
    vertices, and on a coarse grid the vertex where two basins merge can sit well above the
    continuous saddle between vertices, so an ``"artifact"`` on a plane says the grid
    overstates that barrier (refine it around the saddle). Non-linear decoders (the
    auto-encoder) bend out of the plane of their two points and can show barriers the network
    does not have at all.

    The check is stored with the topology by :meth:`TopologyCheck.attach`.

    Examples
    --------
    >>> import torch
    >>> from losstopo import Grid, PlaneProjector, analyze, evaluate, verify_topology
    >>> class TwoWells(torch.nn.Module):  # (w0^2 - 1)^2 + w1^2: two minima at w0 = +-1
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = torch.nn.Parameter(torch.zeros(2))
    ...     def forward(self, x):
    ...         return ((self.w[0] ** 2 - 1) ** 2 + self.w[1] ** 2).expand(len(x), 1)
    >>> model, data = TwoWells(), (torch.zeros(2, 1), torch.zeros(2, 1))
    >>> mean = lambda out, target: out.mean()
    >>> proj = PlaneProjector(model, torch.eye(2))
    >>> field = evaluate(model, data, mean, proj, Grid.square(resolution=21, extent=1.5),
    ...                  progress=False)
    >>> check = verify_topology(model, data, mean, field, analyze(field, 0.1), projector=proj,
    ...                         device="cpu")
    >>> check.n_minima, check.status.tolist(), check.score
    (2, ['confirmed'], 1.0)
    """
    projector = _projector(field, projector)
    topo = _topology(field, topology)
    n_points = validate_int(n_points, "n_points", low=3)
    fraction = validate_float(fraction, "fraction", low=0.0)
    steps = validate_int(steps, "steps", low=2)
    tol = validate_float(tol, "tol", low=0.0)
    if curve and curve_fn is None:
        curve_fn = bezier_barrier(model, data, loss, epochs=curve_epochs, seed=seed, device=device)
    if not hasattr(model, "named_parameters"):
        raise InvalidTypeError(f"'model' must be a torch.nn.Module; got {type(model).__name__}.")
    n_params = ParameterSpace.from_module(model).n_params
    expected = getattr(projector, "n_params_", None)
    if expected is not None and int(expected) != n_params:
        raise InvalidParameterError(
            f"The field's projector maps to {int(expected)} parameters but the model has "
            f"{n_params}; pass the model the field was computed for."
        )
    decoder = as_decoder(projector)
    ckpts = _checkpoints(trajectory, n_params)

    tree = topo.join_tree
    assert tree is not None
    branches = np.asarray(tree.branches, dtype=np.int64).reshape(-1, 3)
    pairs = np.asarray(tree.pairs, dtype=np.float64).reshape(-1, 2)
    index = branches[:, 0]
    coords = _coords(field, index)
    params = np.asarray(decoder(coords), dtype=np.float64).reshape(len(index), -1)
    if params.shape[1] != n_params:
        raise InvalidParameterError(
            f"The projector decodes to {params.shape[1]} parameters but the model has "
            f"{n_params}; pass the model the field was computed for."
        )

    op = hvp(model, data, loss, device=device, batch_size=batch_size)
    m = len(index)
    rows: dict[str, list[float]] = {k: [] for k in ("loss", "lmin", "lmax", "gn", "dist")}
    n_hvp = 0
    for i in range(m):
        at = op.at(params[i])
        ritz = lanczos(at.matvec, n_params, steps, seed=seed + i).ritz_values()
        rows["lmin"].append(float(ritz[0]))
        rows["lmax"].append(float(ritz[-1]))
        rows["gn"].append(float(np.linalg.norm(at.gradient())))
        rows["loss"].append(at.loss())
        n_hvp += at.n_hvp
        dist = np.nan if ckpts is None else float(np.min(np.linalg.norm(ckpts - params[i], axis=1)))
        rows["dist"].append(dist)
    lam_min, lam_max = np.asarray(rows["lmin"]), np.asarray(rows["lmax"])
    is_min = lam_min >= -tol * np.abs(lam_max)

    # separations: every non-essential branch merges into its parent at its saddle
    seps = np.flatnonzero(branches[:, 1] >= 0)
    pair = np.stack([seps, branches[seps, 2]], axis=1) if seps.size else np.zeros((0, 2), int)
    saddle_index = branches[seps, 1]
    saddle_value = pairs[seps, 1]
    picture = saddle_value - np.maximum(pairs[pair[:, 0], 0], pairs[pair[:, 1], 0])
    t = np.linspace(0.0, 1.0, n_points)
    path_loss = np.zeros((seps.size, n_points))
    for j, (i, k) in enumerate(pair):  # one segment at a time: n_points rows of parameters
        segment = params[i][None, :] * (1 - t)[:, None] + params[k][None, :] * t[:, None]
        values = evaluate_points(model, data, loss, segment, device=device, batch_size=batch_size)
        path_loss[j] = np.asarray(values.loss, dtype=np.float64)
    straight = path_loss.max(axis=1) - np.maximum(path_loss[:, 0], path_loss[:, -1])
    none_below = max(float(topo.min_persistence), NO_BARRIER)  # what the picture itself ignores
    status = np.where(
        straight >= fraction * picture,
        "confirmed",
        np.where(straight > none_below, "overstated", "artifact"),
    ).astype("<U15")
    curve_barrier = np.full(seps.size, np.nan)
    if curve and curve_fn is not None:
        for j in np.flatnonzero(status != "artifact").tolist():
            curve_barrier[j] = float(curve_fn(params[pair[j, 0]], params[pair[j, 1]]))
            if curve_barrier[j] < fraction * min(picture[j], straight[j]):
                status[j] = "curve-connected"
    is_artifact = np.zeros(m, dtype=bool)  # a basin the full space does not separate
    is_artifact[pair[:, 0]] = np.isin(status, ("artifact", "curve-connected"))
    return TopologyCheck(
        index=index.astype(np.int64),
        coords=coords,
        value=pairs[:, 0].copy(),
        loss=np.asarray(rows["loss"]),
        lambda_min=lam_min,
        lambda_max=lam_max,
        grad_norm=np.asarray(rows["gn"]),
        param_norm=np.linalg.norm(params, axis=1),
        checkpoint_distance=np.asarray(rows["dist"], dtype=np.float64),
        is_full_space_minimum=is_min,
        is_artifact=is_artifact,
        pair=pair.astype(np.int64),
        saddle_index=saddle_index.astype(np.int64),
        saddle_coords=_coords(field, saddle_index),
        saddle_value=saddle_value,
        picture_barrier=picture,
        straight_barrier=straight,
        curve_barrier=curve_barrier,
        path_loss=path_loss,
        status=status,
        fraction=fraction,
        tol=tol,
        attrs={
            "lanczos_steps": steps,
            "n_points": n_points,
            "seed": int(seed),
            "curve": bool(curve),
            "n_hvp": int(n_hvp),
            "min_persistence": float(topo.min_persistence),
            "projector": _name(projector),
        },
    )


def bezier_barrier(
    model: Any, data: Any, loss: Any, epochs: int = 20, seed: int = 0, device: Any = None
) -> Callable[[np.ndarray, np.ndarray], float]:
    """A ``curve_fn`` for :func:`verify_topology`: the barrier along a trained Bezier curve.

    For two flat parameter vectors, trains the bend of a quadratic Bezier curve between copies of
    ``model`` holding them (:func:`losstopo.fit_curve` on ``data``) and returns the largest loss
    along the curve (41 points, eval-mode BatchNorm) minus the higher endpoint's, at least 0.
    """
    from ..connectivity import fit_curve

    space = ParameterSpace.from_module(model)

    def with_params(params: np.ndarray) -> Any:
        other = copy.deepcopy(model)
        with torch.no_grad():
            for name, value in space.unflatten(torch.as_tensor(params)).items():
                other.get_parameter(name).copy_(value)
        return other

    def barrier(params_a: np.ndarray, params_b: np.ndarray) -> float:
        a, b = with_params(params_a), with_params(params_b)
        curve = fit_curve(a, b, data, loss, epochs=epochs, seed=seed, progress=False, device=device)
        profile = curve.evaluate(data, loss, n_points=41, metrics=(), bn="eval", device=device)
        values = np.asarray(profile.loss, dtype=np.float64)
        return float(max(values.max() - max(values[0], values[-1]), 0.0))

    return barrier
