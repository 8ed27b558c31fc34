"""How faithful is a projection? Projection and loss errors at the checkpoints, and on held-out ones.

For each checkpoint ``x`` and its reconstruction ``x' = inverse_transform(transform(x))``:

- ``projection_error = ||x - x'|| / ||x||`` (relative to the parameter norm);
- ``loss_error = |L(x) - L(x')|`` and ``relative_loss_error = loss_error / |L(x)|``.

Errors on the fitted checkpoints reward memorising them. ``holdout=True`` also fits a clone of the
projector on every other checkpoint of each run and reports the same errors on the others
(``report.holdout``): whether the surface *between* checkpoints means anything. The projector given
is never modified: an unfitted one is fitted as a clone (``sklearn.base.clone``).

Losses are computed by :func:`losstopo.evaluate_points`, the engine of :func:`losstopo.evaluate`.

Examples
--------
>>> import numpy as np, torch
>>> from losstopo import PCAProjector, train
>>> from losstopo.datasets import synthetic_classification
>>> from losstopo.fidelity import fidelity
>>> from losstopo.models import MLP
>>> _ = torch.manual_seed(0)
>>> model, data = MLP(16, (8,), 3), synthetic_classification(n_samples=64)
>>> traj = train(model, data, epochs=6, seed=0, progress=False)
>>> report = fidelity(model, data, "cross_entropy", PCAProjector(2), traj, holdout=True)
>>> report.projection_error.shape, report.holdout.projection_error.shape
((7,), (3,))
>>> bool(report.mean_projection_error < 1)
True
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from torch import nn

from .engine import resolve_device
from .errors import (
    InvalidParameterError,
    NoInverseError,
    validate_output_path,
)
from .evaluate import evaluate_points
from .field import ProjectedPath
from .projectors import decoding_projectors, is_fitted, make_projector
from .projectors.base import as_points

__all__ = [
    "FidelityReport",
    "FidelityTable",
    "compare_projectors",
    "default_projectors",
    "embed_with_loss",
    "fidelity",
]


# ---------------------------------------------------------------------- reports
@dataclass(frozen=True)
class FidelityReport:
    """Per-checkpoint fidelity of a projector, with means, and optionally a held-out report.

    Attributes
    ----------
    projector : str
        Name of the projector.
    indices : ndarray (m,)
        Rows of the trajectory these errors belong to.
    projection_error, loss_error, relative_loss_error : ndarray (m,)
    loss, reconstructed_loss : ndarray (m,)
        Loss at the checkpoints and at their reconstructions.
    holdout : FidelityReport or None
        The same errors on checkpoints left out of a clone's fit.
    attrs : dict
        Provenance (projector description, fit time, ...).
    """

    projector: str
    indices: np.ndarray
    projection_error: np.ndarray
    loss_error: np.ndarray
    relative_loss_error: np.ndarray
    loss: np.ndarray
    reconstructed_loss: np.ndarray
    holdout: FidelityReport | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_projection_error(self) -> float:
        return float(np.mean(self.projection_error))

    @property
    def mean_loss_error(self) -> float:
        return float(np.mean(self.loss_error))

    @property
    def mean_relative_loss_error(self) -> float:
        return float(np.mean(self.relative_loss_error))

    def summary(self) -> dict[str, float]:
        """The means (and held-out means, prefixed ``holdout_``) as a flat dict."""
        out = {
            "mean_projection_error": self.mean_projection_error,
            "mean_loss_error": self.mean_loss_error,
            "mean_relative_loss_error": self.mean_relative_loss_error,
        }
        if self.holdout is not None:
            out.update({f"holdout_{k}": v for k, v in self.holdout.summary().items()})
        return out


def _check_decodes(projector: Any) -> None:
    """Refuse, before any fitting, a projector that cannot decode coordinates."""
    if getattr(projector, "decodes", True):
        return
    raise NoInverseError(
        f"{type(projector).__name__} cannot decode coordinates back to parameters, so there is "
        f"no reconstruction to measure; use a projector that decodes "
        f"({', '.join(decoding_projectors())}), or losstopo.fidelity.embed_with_loss(...) to see "
        "the checkpoints' losses in its embedding."
    )


def _errors(projector: Any, points: np.ndarray, chunk: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Relative projection errors and the reconstructions (float32 copies, as models hold them)."""
    errs = np.empty(len(points))
    recon = np.empty(points.shape, dtype=np.float32)
    for s in range(0, len(points), chunk):
        block = points[s : s + chunk]
        rec = np.asarray(projector.inverse_transform(projector.transform(block)), dtype=np.float64)
        x = block.astype(np.float64)
        norm = np.linalg.norm(x, axis=1)
        errs[s : s + chunk] = np.linalg.norm(rec - x, axis=1) / np.where(norm > 0, norm, 1.0)
        recon[s : s + chunk] = rec
    return errs, recon


def _holdout_mask(holdout: Any, runs: np.ndarray) -> np.ndarray | None:
    n = len(runs)
    if holdout is None or holdout is False:
        return None
    if holdout is True or (isinstance(holdout, str) and holdout == "every_other"):
        mask = np.zeros(n, dtype=bool)
        for r in dict.fromkeys(runs.tolist()):
            idx = np.flatnonzero(runs == r)
            mask[idx[1::2]] = True
    else:
        arr = np.asarray(holdout) if not isinstance(holdout, str) else np.asarray([])
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise InvalidParameterError(
                    f"A boolean 'holdout' mask needs one entry per checkpoint ({n}); got shape "
                    f"{arr.shape}."
                )
            mask = arr.copy()
        elif arr.size and np.issubdtype(arr.dtype, np.integer):
            if arr.size and (arr.min() < -n or arr.max() >= n):
                raise InvalidParameterError(
                    f"Holdout index {int(arr.max() if arr.max() >= n else arr.min())} is beyond "
                    f"the trajectory of {n} checkpoints; use indices in [{-n}, {n - 1}]."
                )
            mask = np.zeros(n, dtype=bool)
            mask[arr % n] = True
        else:
            raise InvalidParameterError(
                "The 'holdout' parameter must be None, True, 'every_other', indices or a boolean "
                f"mask of held-out checkpoints. Got {holdout!r} instead."
            )
    if mask.all() or not mask.any():
        raise InvalidParameterError(
            f"The holdout leaves {int((~mask).sum())} checkpoints to fit and {int(mask.sum())} to "
            "test; both must be non-empty. Record more checkpoints."
        )
    return mask


def fidelity(
    model: nn.Module,
    data: Any,
    loss: Any,
    projector: Any,
    trajectory: Any,
    holdout: Any = None,
    device: str | torch.device | None = None,
) -> FidelityReport:
    """Projection and loss errors of ``projector`` on the checkpoints of ``trajectory``.

    Parameters
    ----------
    model, data, loss : as for :func:`losstopo.evaluate` (the model gives the architecture)
    projector : a losstopo projector with ``inverse_transform``
        Never modified: a fitted one is used as it is; for an unfitted one a clone
        (``sklearn.base.clone``) is fitted on ``trajectory``.
    trajectory : Trajectory or (n, n_params) array
    holdout : None, True / "every_other", indices or a boolean mask of held-out checkpoints
        When given, a clone is fitted on the other checkpoints and ``report.holdout`` holds the
        errors on the held-out ones (True: every other checkpoint of each run).
    device : where losses are evaluated (default: :func:`losstopo.engine.default_device`)

    Returns
    -------
    FidelityReport
    """
    points = as_points(trajectory, "trajectory")
    runs = np.asarray(getattr(trajectory, "runs", np.zeros(len(points), dtype=str))).astype(str)
    mask = _holdout_mask(holdout, runs)
    _check_decodes(projector)
    name = type(projector).__name__
    dev = resolve_device(device)
    t0 = time.perf_counter()
    fitted = projector if is_fitted(projector) else clone(projector).fit(trajectory)
    fit_seconds = time.perf_counter() - t0
    base_loss = evaluate_points(model, data, loss, points, device=dev).loss

    def report(proj: Any, idx: np.ndarray, extra: dict[str, Any]) -> FidelityReport:
        errs, recon = _errors(proj, points[idx])
        rec_loss = evaluate_points(model, data, loss, recon, device=dev).loss
        ref = base_loss[idx]
        loss_err = np.abs(rec_loss - ref)
        rel = loss_err / np.maximum(np.abs(ref), np.finfo(np.float64).tiny)
        return FidelityReport(name, idx, errs, loss_err, rel, ref, rec_loss, None, extra)

    attrs = {
        "projector": fitted.describe(),
        "fit_seconds": fit_seconds,
        "n_checkpoints": len(points),
    }
    main = report(fitted, np.arange(len(points)), attrs)
    if mask is None:
        return main
    fit_part = trajectory[np.flatnonzero(~mask)] if hasattr(trajectory, "select") else points[~mask]
    t0 = time.perf_counter()
    held_out = clone(projector).fit(fit_part)
    held = report(
        held_out,
        np.flatnonzero(mask),
        {"fit_seconds": time.perf_counter() - t0, "n_fitted": int((~mask).sum())},
    )
    return FidelityReport(
        main.projector,
        main.indices,
        main.projection_error,
        main.loss_error,
        main.relative_loss_error,
        main.loss,
        main.reconstructed_loss,
        held,
        main.attrs,
    )


def embed_with_loss(
    model: nn.Module,
    data: Any,
    loss: Any,
    projector: Any,
    trajectory: Any,
    device: str | torch.device | None = None,
) -> dict[str, ProjectedPath]:
    """Each run's checkpoints in a fitted projector's coordinates, with the loss at each checkpoint.

    Works for any fitted projector, including those that cannot decode (PHATE): the coordinates
    come from ``transform`` and the losses from :func:`losstopo.evaluate_points` at the
    checkpoints themselves. Returns ``{run: ProjectedPath(coords, step, loss, run)}`` (what
    ``LossField.paths`` holds), ready for a scatter plot coloured by loss.

    Examples
    --------
    >>> import torch
    >>> from losstopo import PCAProjector, train
    >>> from losstopo.datasets import synthetic_classification
    >>> from losstopo.models import MLP
    >>> _ = torch.manual_seed(0)
    >>> model, data = MLP(16, (8,), 3), synthetic_classification(n_samples=64)
    >>> traj = train(model, data, epochs=4, seed=0, progress=False)
    >>> paths = embed_with_loss(model, data, "cross_entropy", PCAProjector(2).fit(traj), traj)
    >>> path = paths["run0"]
    >>> path.coords.shape, path.loss.shape, bool(path.loss[-1] < path.loss[0])
    ((5, 2), (5,), True)
    """
    if not hasattr(trajectory, "run_ids"):
        raise InvalidParameterError(
            "embed_with_loss needs a losstopo.Trajectory (for step numbers and run ids); "
            "wrap an array with Trajectory(points, steps, runs)."
        )
    coords = np.asarray(projector.transform(trajectory))
    losses = evaluate_points(model, data, loss, trajectory.points, device=device).loss
    paths = {}
    for run in trajectory.run_ids:
        mask = trajectory.runs == run
        paths[run] = ProjectedPath(
            coords=coords[mask], step=trajectory.steps[mask], loss=losses[mask], run=run
        )
    return paths


# ---------------------------------------------------------------------- comparison table
@dataclass(frozen=True)
class FidelityTable:
    """Fidelity of several projectors on the same trajectory (Neuro-Visualizer's / GlobScope's table).

    ``rows`` are dicts with ``projector`` and the means (``mean_projection_error``, ...,
    ``holdout_...``, ``fit_seconds``); ``reports`` maps each name to its :class:`FidelityReport`.
    """

    rows: list[dict[str, Any]]
    reports: dict[str, FidelityReport]

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols += [c for c in row if c not in cols]
        return cols

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{projector: {metric: value}}`` (what :func:`losstopo.plot.plot_fidelity` takes)."""
        return {r["projector"]: {k: v for k, v in r.items() if k != "projector"} for r in self.rows}

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        out = validate_output_path(path, "the CSV table")
        with out.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns)
            writer.writeheader()
            for row in self.rows:
                writer.writerow(
                    {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
                )
        return out

    def error_table(self) -> dict[str, dict[str, float]]:
        """The error columns per projector (what :func:`losstopo.plot.plot_fidelity` draws).

        Projection and relative loss errors, fitted and held-out; times and counts left out.
        """
        keep = (
            "mean_projection_error",
            "mean_relative_loss_error",
            "holdout_mean_projection_error",
            "holdout_mean_relative_loss_error",
        )
        return {
            name: {k: v for k, v in m.items() if k in keep} for name, m in self.as_dict().items()
        }

    def __str__(self) -> str:
        cols = self.columns
        cells = [
            [str(r.get(c, "")) if not isinstance(r.get(c), float) else f"{r[c]:.3g}" for c in cols]
            for r in self.rows
        ]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)


def default_projectors(
    n_components: int = 2, random_state: int = 0, progress: bool = False
) -> dict[str, Any]:
    """PCA, Kernel-PCA, UMAP and the auto-encoder, as compared by Neuro-Visualizer and GlobScope.

    Fresh unfitted projectors from the projector registry.

    Examples
    --------
    >>> sorted(default_projectors())
    ['autoencoder', 'kpca', 'pca', 'umap']
    """
    return {
        name: make_projector(
            name, n_components=n_components, random_state=random_state, progress=progress
        )
        for name in ("pca", "kpca", "umap", "autoencoder")
    }


def compare_projectors(
    model: nn.Module,
    data: Any,
    loss: Any,
    trajectory: Any,
    projectors: Mapping[str, Any] | None = None,
    holdout: Any = True,
    csv_path: str | os.PathLike[str] | None = None,
    n_components: int = 2,
    random_state: int = 0,
    device: str | torch.device | None = None,
) -> FidelityTable:
    """Fit each projector on ``trajectory`` and tabulate its fidelity (optionally held-out too).

    ``projectors`` maps names to projectors (default :func:`default_projectors`); they are not
    modified (unfitted ones are fitted as clones, see :func:`fidelity`). Writes the table as CSV
    to ``csv_path`` when given; ``losstopo.plot.plot_fidelity(table.error_table())`` draws it.
    """
    if projectors is None:
        projectors = default_projectors(n_components, random_state)
    if not isinstance(projectors, Mapping) or not projectors:
        raise InvalidParameterError(
            "The 'projectors' parameter must be a non-empty dict of name -> projector."
        )
    out_csv = validate_output_path(csv_path, "csv_path") if csv_path is not None else None
    rows, reports = [], {}
    for name, proj in projectors.items():
        rep = fidelity(model, data, loss, proj, trajectory, holdout=holdout, device=device)
        reports[str(name)] = rep
        row: dict[str, Any] = {"projector": str(name), **rep.summary()}
        row["fit_seconds"] = float(rep.attrs.get("fit_seconds", float("nan")))
        rows.append(row)
    table = FidelityTable(rows, reports)
    if out_csv is not None:
        table.to_csv(out_csv)
    return table
