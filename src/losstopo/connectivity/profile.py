"""`PathProfile`: the loss (and metrics) along a path between two models, and its barrier.

The barrier of a path (Frankle et al. 2020) is the largest excess of the loss over the straight
line between the two endpoint losses; ``barrier_t`` is where along the path it is reached.

Examples
--------
>>> import numpy as np
>>> t = np.linspace(0, 1, 5)
>>> p = PathProfile.from_values(t, np.array([1.0, 1.5, 2.0, 1.5, 1.0]))
>>> float(p.barrier), float(p.barrier_t)
(1.0, 0.5)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FieldFormatError, InvalidParameterError, ShapeMismatchError
from ..jsonable import to_jsonable

#: ``format`` attribute of a path-profile HDF5 file
PROFILE_FORMAT = "losstopo-path-profile"

__all__ = ["PROFILE_FORMAT", "PathProfile", "barrier_of"]


def barrier_of(t: Any, loss: Any) -> tuple[float, float]:
    """The barrier of ``loss`` sampled at ``t`` and the ``t`` where it is reached.

    The excess over the straight line ``loss[0] + (t - t[0]) / (t[-1] - t[0]) * (loss[-1] -
    loss[0])``, at its largest; 0 (at ``t[0]``) when the loss never rises above that line.

    >>> barrier_of([0.0, 0.5, 1.0], [2.0, 2.0, 2.0])
    (0.0, 0.0)
    """
    tt = np.asarray(t, dtype=np.float64).ravel()
    ll = np.asarray(loss, dtype=np.float64).ravel()
    if tt.size < 2 or tt.size != ll.size:
        raise ShapeMismatchError(
            f"A barrier needs at least 2 losses, one per value of t; got {ll.size} losses for "
            f"{tt.size} values of t."
        )
    line = ll[0] + (tt - tt[0]) / (tt[-1] - tt[0]) * (ll[-1] - ll[0])
    excess = np.where(np.isfinite(ll), ll - line, np.inf)  # a non-finite loss: no path
    j = int(np.argmax(excess))
    if not excess[j] > 0:
        return 0.0, float(tt[0])
    return float(excess[j]), float(tt[j])


@dataclass(frozen=True, eq=False)
class PathProfile:
    """Loss and metrics sampled along a path between two models.

    Attributes
    ----------
    t : (n,) positions along the path, 0 at the first model and 1 at the second
    loss : (n,) mean loss over the data at each position
    metrics : name -> (n,) array (e.g. ``"accuracy"``)
    barrier : largest excess of the loss over the straight line between the endpoint losses
    barrier_t : the position of that excess
    attrs : provenance (``kind``: ``"linear"``, ``"bezier"`` or ``"polychain"``; loss, data, bn)
    """

    t: np.ndarray
    loss: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    barrier: float = 0.0
    barrier_t: float = 0.0
    attrs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_values(
        cls,
        t: Any,
        loss: Any,
        metrics: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> PathProfile:
        """A profile whose barrier is computed from ``t`` and ``loss``."""
        tt = np.asarray(t, dtype=np.float64).ravel()
        ll = np.asarray(loss, dtype=np.float64).ravel()
        mm = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in (metrics or {}).items()}
        for name, arr in {"loss": ll, **mm}.items():
            if arr.size != tt.size:
                raise ShapeMismatchError(
                    f"The profile's {name!r} has {arr.size} values for {tt.size} values of t; "
                    "give one value per position."
                )
        barrier, where = barrier_of(tt, ll)
        return cls(tt, ll, mm, barrier, where, dict(attrs or {}))

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def kind(self) -> str:
        """``"linear"``, ``"bezier"``, ``"polychain"`` (from ``attrs``), or ``"path"``."""
        return str(self.attrs.get("kind", "path"))

    @property
    def endpoint_losses(self) -> tuple[float, float]:
        """The loss at the two ends of the path."""
        return float(self.loss[0]), float(self.loss[-1])

    def equals(self, other: object) -> bool:
        """Exact equality of every array, the barrier and ``attrs``.

        >>> p = PathProfile.from_values([0.0, 1.0], [1.0, 2.0])
        >>> p.equals(PathProfile.from_values([0.0, 1.0], [1.0, 2.0]))
        True
        """
        if not isinstance(other, PathProfile):
            return False
        same = (
            np.array_equal(self.t, other.t)
            and np.array_equal(self.loss, other.loss, equal_nan=True)
            and sorted(self.metrics) == sorted(other.metrics)
            and all(
                np.array_equal(v, other.metrics[k], equal_nan=True) for k, v in self.metrics.items()
            )
        )
        return bool(
            same
            and self.barrier == other.barrier
            and self.barrier_t == other.barrier_t
            and _json(self.attrs) == _json(other.attrs)
        )

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write ``t, loss, metrics...`` as CSV (one row per position); returns the path."""
        out = Path(path)
        names = sorted(self.metrics)
        cols = np.column_stack([self.t, self.loss, *(self.metrics[n] for n in names)])
        np.savetxt(out, cols, delimiter=",", header=",".join(["t", "loss", *names]),
                   comments="", fmt="%.17g")  # fmt: skip
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile to an HDF5 file (read back exactly by :meth:`load`).

        >>> import tempfile, os
        >>> p = PathProfile.from_values([0.0, 0.5, 1.0], [1.0, 3.0, 2.0], {"accuracy": [1, 0, 1]})
        >>> f = os.path.join(tempfile.mkdtemp(), "p.h5")
        >>> p.save(f)
        >>> PathProfile.load(f).equals(p)
        True
        """
        import h5py

        from ..io.hdf5 import write_atomically

        def write(f: h5py.File) -> None:
            f.attrs["format"] = PROFILE_FORMAT
            f.attrs["format_version"] = 1
            f.attrs["barrier"] = float(self.barrier)
            f.attrs["barrier_t"] = float(self.barrier_t)
            f.attrs["attrs"] = _json(self.attrs)
            f.create_dataset("t", data=self.t)
            f.create_dataset("loss", data=self.loss)
            g = f.create_group("metrics")
            for name, arr in self.metrics.items():
                g.create_dataset(name, data=arr)

        write_atomically(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PathProfile:
        """Read a profile written by :meth:`save`."""
        import h5py

        where = Path(path)
        if not where.is_file():
            raise FieldFormatError(f"{where} does not exist; check the path.")
        try:
            f = h5py.File(where, "r")
        except OSError as exc:
            raise FieldFormatError(
                f"{where} is not a readable HDF5 file; pass a file written by PathProfile.save."
            ) from exc
        with f:
            if f.attrs.get("format") != PROFILE_FORMAT:
                raise FieldFormatError(
                    f"{where} is not a losstopo path profile (no format={PROFILE_FORMAT!r} "
                    "attribute); pass a file written by PathProfile.save."
                )
            return cls(
                np.asarray(f["t"][()], dtype=np.float64),
                np.asarray(f["loss"][()], dtype=np.float64),
                {k: np.asarray(v[()], dtype=np.float64) for k, v in f["metrics"].items()},
                float(f.attrs["barrier"]),
                float(f.attrs["barrier_t"]),
                json.loads(str(f.attrs["attrs"])),
            )

    def __repr__(self) -> str:
        return (
            f"PathProfile(kind={self.kind!r}, n={len(self)}, barrier={self.barrier:.4g} at "
            f"t={self.barrier_t:.3g}, ends={self.loss[0]:.4g}/{self.loss[-1]:.4g})"
        )


def validate_n_points(n_points: Any) -> int:
    """``n_points`` as an int >= 2, or an error saying a path needs both ends."""
    if not isinstance(n_points, (int, np.integer)) or isinstance(n_points, bool) or n_points < 2:
        raise InvalidParameterError(
            f"The 'n_points' parameter must be an int >= 2 (a path has two ends). Got "
            f"{n_points!r} instead."
        )
    return int(n_points)


def _json(attrs: Mapping[str, Any]) -> str:
    return json.dumps(to_jsonable(dict(attrs)), sort_keys=True)
