"""`TopologyCheck`: a picture's basins and separations, looked at in the full parameter space."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..jsonable import to_jsonable
from ..topology import TopologySummary

#: Where :meth:`TopologyCheck.attach` keeps the check in a summary's ``attrs``.
VERIFY_KEY = "topology_check"

#: The labels of a separation, in :attr:`TopologyCheck.status`.
STATUSES = ("confirmed", "overstated", "artifact", "curve-connected")

_FLOAT_MINIMA = (
    "value",
    "loss",
    "lambda_min",
    "lambda_max",
    "grad_norm",
    "param_norm",
    "checkpoint_distance",
)
_FLOAT_SEPARATIONS = ("saddle_value", "picture_barrier", "straight_barrier", "curve_barrier")


@dataclass(frozen=True, eq=False)
class TopologyCheck:
    """Every persistent minimum and every separation of a picture's join tree, in full space.

    Minima (one row per branch of the simplified join tree, in its order: row ``i`` is row ``i``
    of ``join_pairs``, the global minimum last):

    index, coords : flat grid index and axis coordinates of the picture's minimum
    value : the picture's value there
    loss : the loss at the decoded parameters (recomputed)
    lambda_min, lambda_max : extreme full-space Ritz values (a negative ``lambda_min`` proves the
        point is a saddle of the network)
    grad_norm : full-space gradient norm at the decoded parameters
    param_norm : norm of the decoded parameter vector
    checkpoint_distance : distance to the nearest fitted checkpoint (NaN without a trajectory)
    is_full_space_minimum : no negative curvature beyond ``tol * |lambda_max|`` was found
    is_artifact : see :attr:`n_artifact_minima`

    Separations (one row per saddle where a branch merges into its parent branch):

    pair : (s, 2) minimum rows (the shallower basin's, the deeper basin's it merges into)
    saddle_index, saddle_coords, saddle_value : the picture's merge saddle
    picture_barrier : saddle value minus the higher of the two minima's values
    straight_barrier : max over the straight segment between the two decoded minima of the loss,
        minus the higher endpoint loss (``n_points`` evaluations)
    path_loss : (s, n_points) the loss along each segment
    curve_barrier : the same along a curve (NaN when no curve was fitted)
    status : ``"confirmed"`` (``straight_barrier >= fraction * picture_barrier``),
        ``"overstated"`` (the straight segment has a barrier, above the topology's
        simplification threshold, but lower than that: two basins of the network whose barrier
        the picture exaggerates), ``"artifact"`` (no barrier on the straight segment: one basin
        of the network that the picture shows as two), or ``"curve-connected"`` (a straight
        barrier exists, but the curve's is below ``fraction`` times the lower of the picture's
        and the straight segment's)

    Examples
    --------
    >>> import torch
    >>> from losstopo import Grid, PlaneProjector, evaluate, verify_topology
    >>> _ = torch.manual_seed(0)
    >>> model, data = torch.nn.Linear(2, 1), (torch.randn(8, 2), torch.randn(8, 1))
    >>> proj = PlaneProjector(model, torch.eye(3)[:2])  # least squares: one convex basin
    >>> field = evaluate(model, data, "mse", proj, Grid.square(resolution=5), progress=False)
    >>> check = verify_topology(model, data, "mse", field, projector=proj, device="cpu")
    >>> check.n_minima, check.n_separations, check.score, bool(check.is_full_space_minimum[0])
    (1, 0, nan, True)
    >>> TopologyCheck.from_dict(check.to_dict()).equals(check)
    True
    """

    index: np.ndarray
    coords: np.ndarray
    value: np.ndarray
    loss: np.ndarray
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    grad_norm: np.ndarray
    param_norm: np.ndarray
    checkpoint_distance: np.ndarray
    is_full_space_minimum: np.ndarray
    is_artifact: np.ndarray
    pair: np.ndarray
    saddle_index: np.ndarray
    saddle_coords: np.ndarray
    saddle_value: np.ndarray
    picture_barrier: np.ndarray
    straight_barrier: np.ndarray
    curve_barrier: np.ndarray
    path_loss: np.ndarray
    status: np.ndarray
    fraction: float
    tol: float
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_minima(self) -> int:
        return int(self.index.size)

    @property
    def n_separations(self) -> int:
        return int(self.pair.shape[0])

    @property
    def n_confirmed(self) -> int:
        return int(np.count_nonzero(self.status == "confirmed"))

    @property
    def score(self) -> float:
        """Fraction of the picture's persistent separations that are confirmed (NaN if none)."""
        return self.n_confirmed / self.n_separations if self.n_separations else float("nan")

    @property
    def n_artifact_minima(self) -> int:
        """Picture minima whose basin the full space does not separate: folds of the projection.

        A minimum's basin is an artifact when its own separation (the saddle where it merges
        into a deeper basin, which gives it its persistence) is ``"artifact"`` (the straight
        segment in the full space has no barrier) or ``"curve-connected"`` (a curve removes
        the straight segment's barrier). An ``"overstated"`` separation is two basins of the
        network with a lower barrier than the picture's: not an artifact minimum. The global minimum has no own separation and is never an artifact.
        Full-space curvature is reported on its own (:attr:`n_saddles_in_full_space`): the
        end of a training run is rarely a strict minimum of the network, so a picture minimum
        that is a full-space saddle still marks a real basin of the picture's sheet when its
        barrier is confirmed.
        """
        return int(np.count_nonzero(self.is_artifact))

    @property
    def n_saddles_in_full_space(self) -> int:
        """Picture minima with negative full-space curvature."""
        return int(np.count_nonzero(~self.is_full_space_minimum))

    def __len__(self) -> int:
        return self.n_minima

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (non-finite numbers through ``to_jsonable``); :meth:`from_dict`
        rebuilds an equal check."""
        out: dict[str, Any] = {
            f.name: getattr(self, f.name).tolist()
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        out.update(fraction=float(self.fraction), tol=float(self.tol), attrs=dict(self.attrs))
        return dict(to_jsonable(out))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TopologyCheck:
        """Rebuild a check from :meth:`to_dict` output."""

        def num(key: str, shape: tuple[int, ...]) -> np.ndarray:
            flat = [_number(v) for v in np.ravel(np.asarray(d[key], dtype=object))]
            return np.asarray(flat, dtype=np.float64).reshape(shape)

        m, s = len(d["index"]), len(d["pair"])
        dim = len(d["coords"][0]) if m else (len(d["saddle_coords"][0]) if s else 0)
        n_points = len(d["path_loss"][0]) if s else int(d.get("attrs", {}).get("n_points", 0))
        kw: dict[str, Any] = {k: num(k, (m,)) for k in _FLOAT_MINIMA}
        kw.update({k: num(k, (s,)) for k in _FLOAT_SEPARATIONS})
        return cls(
            index=np.asarray(d["index"], dtype=np.int64).reshape(m),
            coords=num("coords", (m, dim)),
            is_full_space_minimum=np.asarray(d["is_full_space_minimum"], dtype=bool).reshape(m),
            is_artifact=np.asarray(d["is_artifact"], dtype=bool).reshape(m),
            pair=np.asarray(d["pair"], dtype=np.int64).reshape(s, 2),
            saddle_index=np.asarray(d["saddle_index"], dtype=np.int64).reshape(s),
            saddle_coords=num("saddle_coords", (s, dim)),
            path_loss=num("path_loss", (s, n_points)),
            status=np.asarray(d["status"], dtype=str).reshape(s).astype("<U15"),
            fraction=float(d["fraction"]),
            tol=float(d["tol"]),
            attrs=dict(d.get("attrs", {})),
            **kw,
        )

    def equals(self, other: Any) -> bool:
        """Whether ``other`` is a TopologyCheck with equal arrays (NaN equal to NaN) and attrs."""
        if not isinstance(other, TopologyCheck):
            return False
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray):
                if a.dtype != b.dtype or a.shape != b.shape:
                    return False
                if a.dtype.kind == "f" and not np.array_equal(a, b, equal_nan=True):
                    return False
                if a.dtype.kind != "f" and not np.array_equal(a, b):
                    return False
            elif f.name == "attrs":
                if to_jsonable(a) != to_jsonable(b):
                    return False
            elif a != b:
                return False
        return True

    def attach(self, summary: TopologySummary) -> TopologySummary:
        """``summary`` with this check in its ``attrs["topology_check"]``.

        Saved with the summary (``LossField.save``, ``store_topology``), printed by
        ``losstopo topology``, shown in the HTML report and written by the VTK export as point
        arrays of the critical points. Read it back with :meth:`from_summary`.
        """
        attrs = {**summary.attrs, VERIFY_KEY: self.to_dict()}
        return dataclasses.replace(summary, attrs=attrs)

    @classmethod
    def from_summary(cls, summary: Any) -> TopologyCheck | None:
        """The check attached to ``summary`` by :meth:`attach`, or ``None``."""
        stored = getattr(summary, "attrs", {}).get(VERIFY_KEY)
        return None if stored is None else cls.from_dict(stored)

    def __repr__(self) -> str:
        return (
            f"TopologyCheck({self.n_minima} minima, {self.n_separations} separations, "
            f"{self.n_confirmed} confirmed, score {self.score:.3g}, "
            f"{self.n_artifact_minima} artifact minima)"
        )


def _number(v: Any) -> float:
    if v is None:
        return float("nan")
    return float(v)  # "inf", "-inf", "nan" strings from to_jsonable parse too


def format_check(check: TopologyCheck, limit: int = 20) -> str:
    """A readable table of the check (what ``losstopo verify`` and ``losstopo topology`` print)."""
    lines = [
        f"full-space check: {check.n_minima} minima, {check.n_separations} separations; "
        f"score {check.score:.3g} ({check.n_confirmed} confirmed at fraction {check.fraction:g}); "
        f"{check.n_artifact_minima} artifact minima, {check.n_saddles_in_full_space} full-space "
        "saddles",
        "    {:>3} {:>12} {:>12} {:>11} {:>11} {:>10} {:>9}  coords".format(
            "#", "value", "loss", "lambda_min", "lambda_max", "ckpt dist", "artifact"
        ),
    ]
    for i in range(min(check.n_minima, limit)):
        coords = ", ".join(f"{c:.4g}" for c in check.coords[i])
        lines.append(
            f"    {i:>3} {check.value[i]:>12.6g} {check.loss[i]:>12.6g} "
            f"{check.lambda_min[i]:>11.4g} {check.lambda_max[i]:>11.4g} "
            f"{check.checkpoint_distance[i]:>10.4g} {'yes' if check.is_artifact[i] else 'no':>9}"
            f"  ({coords})"
        )
    if check.n_separations:
        lines.append(
            "    {:>9} {:>12} {:>12} {:>12}  status".format(
                "basins", "picture", "straight", "curve"
            )
        )
    for j in range(min(check.n_separations, limit)):
        a, b = check.pair[j]
        lines.append(
            f"    {f'{a} -> {b}':>9} {check.picture_barrier[j]:>12.6g} "
            f"{check.straight_barrier[j]:>12.6g} {check.curve_barrier[j]:>12.6g}  "
            f"{check.status[j]}"
        )
    if max(check.n_minima, check.n_separations) > limit:
        lines.append(f"    ... (first {limit} rows shown)")
    return "\n".join(lines)
