"""Shared pieces of the exporters: pyvista import, XML writers, provenance, height maps."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import OutputWriteError
from ..field import LossField
from ..io.replace import write_replacing
from ..jsonable import to_jsonable
from ..topology.values import log_shift

#: Domain-scaled height surfaces span this fraction of the largest axis extent in z.
HEIGHT_FRACTION = 0.5


def pyvista() -> Any:
    """Import pyvista, or explain how to install the ``export`` extra."""
    try:
        import pyvista as pv
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "losstopo.export needs pyvista and vtk; install them with pip install 'losstopo[export]'."
        ) from exc
    return pv


def pad3(coords: np.ndarray) -> np.ndarray:
    """``(n, 1..3)`` coordinates as ``(n, 3)`` points, padded with zeros."""
    c = np.atleast_2d(np.asarray(coords, dtype=np.float64))
    out = np.zeros((c.shape[0], 3))
    out[:, : min(3, c.shape[1])] = c[:, :3]
    return out


def write_xml(dataset: Any, path: Path) -> Path:
    """Write a VTK dataset with an XML writer whose files ParaView 5.11 (VTK 9.2) reads.

    Options: appended raw binary data (no base64), zlib compression (present in every VTK
    build), 64-bit headers (file version 1.0, readable since VTK 6), little endian. The writer is
    chosen from the dataset type so the extension always matches the content.
    """
    import vtk

    writers = {
        "vtkImageData": (vtk.vtkXMLImageDataWriter, ".vti"),
        "vtkRectilinearGrid": (vtk.vtkXMLRectilinearGridWriter, ".vtr"),
        "vtkPolyData": (vtk.vtkXMLPolyDataWriter, ".vtp"),
        "vtkStructuredGrid": (vtk.vtkXMLStructuredGridWriter, ".vts"),
    }
    cls = next((w for name, w in writers.items() if dataset.IsA(name)), None)
    if cls is None:  # pragma: no cover - internal misuse
        raise TypeError(f"No XML writer for {dataset.GetClassName()}.")
    writer_cls, ext = cls
    if path.suffix != ext:  # pragma: no cover - internal misuse
        raise ValueError(f"{dataset.GetClassName()} must be written to a {ext} file, not {path}.")

    def write(tmp: Path) -> None:  # into a temporary file renamed over ``path``: never truncated
        writer = writer_cls()
        writer.SetFileName(str(tmp))
        writer.SetInputData(dataset)
        writer.SetDataModeToAppended()
        writer.EncodeAppendedDataOff()
        writer.SetCompressorTypeToZLib()
        writer.SetHeaderTypeToUInt64()
        writer.SetByteOrderToLittleEndian()
        if writer.Write() != 1 or writer.GetErrorCode() != 0:
            raise OutputWriteError(
                f"VTK could not write {path}; check that its directory is writable and has free "
                "space. Nothing was left there."
            )

    write_replacing(path, write)
    return path


def add_field_data(dataset: Any, field: LossField, extra: Mapping[str, Any] | None = None) -> None:
    """Attach the axis names and the provenance (JSON) as string field data."""
    from vtk import vtkStringArray

    def add(name: str, text: str) -> None:
        arr = vtkStringArray()
        arr.SetName(name)
        arr.InsertNextValue(text)
        dataset.GetFieldData().AddArray(arr)

    add("axis_names", json.dumps(list(field.grid.names)))
    add("losstopo_version", __version__)
    add("losstopo_attrs", json.dumps(to_jsonable(field.attrs)))
    for key, value in (extra or {}).items():
        dataset.field_data[key] = np.atleast_1d(np.asarray(value))


class HeightMap:
    """Maps loss values of a 2D field to ``z`` for height surfaces and the things drawn on them.

    ``z = (h(v) - h_min) * scale`` with ``h`` the identity or
    :func:`~losstopo.topology.values.log_loss_values`
    (the log's shift taken from the whole field, so paths and surface agree). With
    ``scale=True`` the finite heights span ``HEIGHT_FRACTION`` of the largest axis extent;
    ``scale=False`` keeps loss units (``scale`` factor 1, no offset).
    """

    def __init__(self, values: np.ndarray, axes: list[np.ndarray], *, log: bool, scale: bool):
        v = np.asarray(values, dtype=np.float64)
        finite = v[np.isfinite(v)]
        self.log = bool(log)
        self.shift = log_shift(v) if finite.size else 1e-4
        h = self._h(finite) if finite.size else np.zeros(1)
        hlo, hhi = float(h.min()), float(h.max())
        if scale:
            extent = max(float(a[-1] - a[0]) for a in axes)
            self.offset = hlo
            self.scale = HEIGHT_FRACTION * extent / (hhi - hlo) if hhi > hlo else 1.0
        else:
            self.offset, self.scale = 0.0, 1.0
        self.top = (hhi - self.offset) * self.scale

    def _h(self, v: np.ndarray) -> np.ndarray:
        if not self.log:
            return v
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(np.maximum(v + self.shift, np.finfo(float).tiny))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Heights of ``values``; non-finite values are placed at the top of the surface."""
        v = np.asarray(values, dtype=np.float64)
        z = (self._h(np.where(np.isfinite(v), v, 0.0)) - self.offset) * self.scale
        return np.where(np.isfinite(v), z, self.top)

    def describe(self) -> dict[str, float]:
        return {
            "z_scale": self.scale,
            "z_offset": self.offset,
            "z_log": float(self.log),
            "z_log_shift": self.shift,
        }
