"""Tests of losstopo.export read back with VTK itself (ParaView checks: test_export_paraview.py)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pv = pytest.importorskip("pyvista", reason="the export extra (pyvista, vtk) is not installed")

from losstopo import Grid, LossField, ProjectedPath  # noqa: E402
from losstopo.errors import InvalidParameterError, InvalidTypeError  # noqa: E402
from losstopo.export import (  # noqa: E402
    critical_points_polydata,
    diagram_polydata,
    field_dataset,
    height_surface,
    merge_tree_arcs,
    steepest_descent,
    write_paraview,
    write_ply,
)
from losstopo.topology import analyze  # noqa: E402


def quad_field(ndim: int = 2, n: int = 11, nan: bool = False) -> LossField:
    axes = {name: np.linspace(-1.0, 1.0 + i, n + i) for i, name in enumerate("xyz"[:ndim])}
    g = Grid(axes)
    mesh = np.meshgrid(*g.axes.values(), indexing="ij")
    v = sum((i + 1) * m**2 for i, m in enumerate(mesh)) + 0.5
    if nan:
        v[(0,) * ndim] = np.nan
    paths = {
        "sgd": ProjectedPath(np.full((3, ndim), 0.5), [0, 1, 2], loss=[3.0, 2.0, 1.0], run="sgd")
    }
    return LossField(v, g, metrics={"accuracy": 1 / (1 + v)}, paths=paths)


def double_well() -> LossField:
    g = Grid.square(41, 2.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    return LossField((x**2 - 1) ** 2 + y**2 + 0.3 * x + 0.5, g)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_field_roundtrip_order_origin_spacing(tmp_path, ndim):
    field = quad_field(ndim)
    files = write_paraview(field, tmp_path)
    img = pv.read(tmp_path / "field.vti")
    assert img.n_points == field.values.size
    assert np.allclose(img.origin[:ndim], field.grid.origin)
    assert np.allclose(img.spacing[:ndim], field.grid.spacing)
    # VTK order is x fastest: point i of the image is the field's Fortran-order value i
    assert np.allclose(img["loss"], field.values.ravel(order="F"))
    pts = img.points[:, :ndim]
    fortran = np.arange(field.values.size).reshape(field.grid.shape).ravel(order="F")
    assert np.allclose(pts, field.grid.points()[fortran])
    assert {"loss", "log_loss", "valid", "accuracy"} <= set(img.point_data.keys())
    np.testing.assert_allclose(img["log_loss"], np.log10(field.values).ravel(order="F"))
    np.testing.assert_allclose(img["accuracy"], field.metrics["accuracy"].ravel(order="F"))
    names = [p.name for p in files]
    assert names[-2:] == ["landscape.vtm", "open_in_paraview.py"]
    assert ("surface.vtp" in names) == (ndim == 2)


def test_nan_kept_and_flagged_surface_masked(tmp_path):
    field = quad_field(2, nan=True)
    write_paraview(field, tmp_path)
    img = pv.read(tmp_path / "field.vti")
    assert np.isnan(img["loss"][0]) and img["valid"][0] == 0 and img["valid"][1:].all()
    surf = pv.read(tmp_path / "surface.vtp")
    assert np.isfinite(surf.points).all() and np.isfinite(surf["loss"]).all()
    assert surf.n_points == field.values.size - 1
    assert surf.n_cells == 2 * 10 * 11 - 2  # only the two triangles touching the NaN corner


def test_non_uniform_axes_become_rectilinear(tmp_path):
    g = Grid({"x": [0.0, 0.1, 0.5, 2.0], "y": [0.0, 1.0, 3.0]})
    field = LossField(np.arange(12.0).reshape(4, 3), g)
    names = [p.name for p in write_paraview(field, tmp_path)]
    assert "field.vtr" in names
    rg = pv.read(tmp_path / "field.vtr")
    assert np.allclose(rg.x, g.axes["x"]) and np.allclose(rg.y, g.axes["y"])


def test_paths_polyline_per_run_at_surface_height(tmp_path):
    y4 = quad_field(2).grid.axes["y"][4]
    field = quad_field(2).with_paths(
        {"adam": ProjectedPath([[0.0, y4], [0.2, 0.1]], [0, 5], run="adam")}
    )
    write_paraview(field, tmp_path)
    paths = pv.read(tmp_path / "paths.vtp")
    assert paths.n_cells == 2 and paths.n_points == 5
    assert paths.point_data["run_id"].tolist() == [0, 0, 0, 1, 1]
    assert paths["step"].tolist() == [0, 1, 2, 0, 5]
    assert np.isnan(paths["loss"][3:]).all()
    surf = pv.read(tmp_path / "surface.vtp")
    zmin, zmax = surf.bounds[4], surf.bounds[5]
    assert np.all((paths.points[:, 2] >= zmin - 1e-9) & (paths.points[:, 2] <= zmax + 1e-9))
    # the adam path has no losses: it lies on the surface (interpolated field value)
    assert np.isclose(paths.points[3, 2], surf.points[surf["grid_index"] == 5 * 12 + 4][0, 2])


def test_topology_files_with_real_analysis(tmp_path):
    field = double_well()
    summary = analyze(field, min_persistence=0.05)
    names = [p.name for p in write_paraview(field, tmp_path, topology=summary)]
    for name in ("critical_points.vtp", "merge_tree.vtp", "persistence_diagram.vtp"):
        assert name in names
    cp = pv.read(tmp_path / "critical_points.vtp")
    assert {"CriticalType", "Persistence", "PairIdentifier", "loss"} <= set(cp.point_data.keys())
    p = summary.persistent
    np.testing.assert_array_equal(cp["VertexIdentifier"], p.index)
    np.testing.assert_array_equal(cp["CriticalType"], p.type)
    np.testing.assert_array_equal(cp["loss"], p.value)
    np.testing.assert_allclose(cp.points[:, :2], p.coords)
    # persistence of each point: its join pair (saddle - minimum); the global minimum's
    # infinite persistence is written as the value range, as TTK does
    (mine, saddle), (glob, _) = summary.join_pairs
    want = {mine: saddle - mine, saddle: saddle - mine, glob: np.ptp(field.values)}
    np.testing.assert_allclose(cp["Persistence"], [want[v] for v in p.value])
    np.testing.assert_array_equal(cp["PairIdentifier"], [{mine: 0, saddle: 0, glob: 1}[v]
                                                         for v in p.value])  # fmt: skip
    img = pv.read(tmp_path / "field.vti")
    np.testing.assert_array_equal(img["basin"], summary.basin_segmentation().ravel(order="F"))
    assert len(np.unique(img["basin"])) == 2
    arcs = pv.read(tmp_path / "merge_tree.vtp")
    assert arcs.n_cells == 1  # one finite (minimum, saddle) pair
    assert np.isclose(arcs["loss"].max(), saddle) and np.isclose(arcs["loss"].min(), mine)
    assert arcs["Birth"].tolist() == [mine] and arcs["Death"].tolist() == [saddle]
    np.testing.assert_allclose(field.values.ravel()[arcs["VertexIdentifier"]], arcs["loss"])
    dg = pv.read(tmp_path / "persistence_diagram.vtp")
    assert {"Birth", "Death", "CriticalType"} <= set(dg.point_data.keys())
    assert {"PairIdentifier", "PairType", "Persistence", "IsFinite"} <= set(dg.cell_data.keys())
    n_pairs = sum(len(summary.diagram[k]) for k in range(2))
    assert dg.n_cells == n_pairs + 1  # plus the diagonal
    births = np.concatenate([summary.diagram[k][:, 0] for k in range(2)])
    np.testing.assert_array_equal(dg["Birth"][: 2 * n_pairs : 2], births)
    deaths = np.concatenate([summary.diagram[k][:, 1] for k in range(2)])
    deaths = np.where(np.isinf(deaths), field.values.max(), deaths)
    np.testing.assert_array_equal(dg["Death"][1 : 2 * n_pairs : 2], deaths)


def test_topology_must_be_a_summary(tmp_path):
    field = double_well()
    summary = analyze(field, min_persistence=0.05)
    for bad in (summary.to_dict(), summary.join_tree, summary.persistent):
        with pytest.raises(InvalidTypeError, match="TopologySummary"):
            write_paraview(field, tmp_path, topology=bad)
    with pytest.raises(InvalidTypeError, match="TopologySummary"):
        field_dataset(field, summary.to_dict())
    # a summary attached to the field is used by default
    names = [p.name for p in write_paraview(field.with_topology(summary), tmp_path)]
    assert "critical_points.vtp" in names


def test_vtm_references_every_file(tmp_path):
    files = write_paraview(quad_field(2), tmp_path)
    root = ET.parse(tmp_path / "landscape.vtm").getroot()
    refs = [d.get("file") for d in root.iter("DataSet")]
    assert refs == [p.name for p in files if p.suffix in (".vti", ".vtp")]
    mb = pv.read(tmp_path / "landscape.vtm")
    assert list(mb.keys()) == ["field", "surface", "paths"]


def test_writer_options_for_paraview_511(tmp_path):
    write_paraview(quad_field(2), tmp_path)
    head = (tmp_path / "field.vti").read_bytes()[:300].decode("latin-1")
    assert 'version="1.0"' in head and 'header_type="UInt64"' in head
    assert "vtkZLibDataCompressor" in head


def test_ply_binary_with_colours(tmp_path):
    out = write_ply(double_well(), tmp_path / "well.ply", log=True, colormap="magma")
    header = out.read_bytes()[:400].decode("latin-1")
    assert "format binary_little_endian" in header
    assert "property uchar red" in header and "property uchar blue" in header
    mesh = pv.read(out)
    assert mesh.n_points == 41 * 41
    assert np.isclose(mesh.bounds[5] - mesh.bounds[4], 0.5 * 4.0)  # scaled to half the extent
    raw = write_ply(double_well(), tmp_path / "raw.ply", scale=False)
    assert np.isclose(pv.read(raw).bounds[5], double_well().values.max())


def test_surface_arrays_and_segmentation():
    field = quad_field(2)
    seg = (field.grid.points()[:, 0] > 0).reshape(field.grid.shape)
    surf = height_surface(field, segmentation=seg, colormap="viridis")
    assert {"loss", "log_loss", "accuracy", "grid_index", "basin", "RGB"} <= set(
        surf.point_data.keys()
    )
    assert surf["RGB"].dtype == np.uint8
    assert surf.is_all_triangles


def test_bad_input(tmp_path):
    g4 = Grid.square(3, 1.0, 4)
    with pytest.raises(InvalidParameterError, match="1D, 2D and 3D"):
        write_paraview(LossField(np.zeros(g4.shape), g4), tmp_path)
    with pytest.raises(InvalidParameterError, match=r"\.vti"):
        write_ply(quad_field(3), tmp_path / "x.ply")
    with pytest.raises(InvalidParameterError, match="does not exist"):
        write_paraview(quad_field(2), tmp_path / "missing")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidParameterError, match="not a directory"):
        write_paraview(quad_field(2), tmp_path / "afile")
    with pytest.raises(InvalidParameterError, match="does not exist"):
        write_ply(double_well(), tmp_path / "missing" / "x.ply")
    with pytest.raises(InvalidParameterError, match="colormap"):
        write_ply(double_well(), tmp_path / "x.ply", colormap="no-such-map")
    with pytest.raises(InvalidParameterError, match=".ply"):
        write_ply(double_well(), tmp_path / "x.stl")
    with pytest.raises(InvalidTypeError):
        write_paraview(np.zeros((3, 3)), tmp_path)
    g = Grid.square(5, 1.0, 2)
    with pytest.raises(InvalidParameterError, match="no grid cell"):
        write_ply(LossField(np.full(g.shape, np.nan), g), tmp_path / "nan.ply")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InvalidParameterError, match="not writable"):
            write_paraview(quad_field(2), ro)
    finally:
        ro.chmod(0o700)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_directory_that_refuses_files():
    """Runs as root too: /proc exists but no file can be created in it."""
    with pytest.raises(InvalidParameterError, match="not writable"):
        write_paraview(quad_field(2), "/proc")


def test_all_nan_field_still_exports_the_image(tmp_path):
    g = Grid.square(5, 1.0, 2)
    names = [p.name for p in write_paraview(LossField(np.full(g.shape, np.nan), g), tmp_path)]
    assert names == ["field.vti", "landscape.vtm", "open_in_paraview.py"]
    assert pv.read(tmp_path / "field.vti")["valid"].sum() == 0


def test_array_level_builders():
    cp = critical_points_polydata(
        np.array([[0.0], [1.0]]), [0, 3], [1.0, 2.0], persistence=[1.0, 1.0], pair_ids=[0, 0]
    )
    assert cp.n_points == 2 and cp.n_verts == 2
    with pytest.raises(InvalidParameterError, match="one each"):
        critical_points_polydata(np.zeros((2, 2)), [0], [1.0, 2.0])
    dg = diagram_polydata(
        [(0, np.array([[0.0, np.inf], [0.2, 0.5]])), (1, np.array([[0.3, 0.9]]))], 2, (0.0, 1.0)
    )
    assert dg["PairType"].tolist() == [0, 0, 1, -1]
    assert dg["IsFinite"].tolist() == [0, 1, 1, 1]
    assert np.allclose(dg["Persistence"], [1.0, 0.3, 0.6, 0.0])
    assert dg["CriticalType"][:6].tolist() == [0, 1, 0, 1, 1, 3]


def test_steepest_descent_and_arcs():
    x = np.linspace(-2, 2, 41)
    X, Y = np.meshgrid(x, x, indexing="ij")
    v = (X**2 - 1) ** 2 + Y**2 + 0.3 * X
    path = steepest_descent(v, 40 * 41 + 40, (x, x))
    assert np.all(np.diff(v.ravel()[path]) < 0)
    end = np.unravel_index(path[-1], v.shape)
    assert np.isclose(x[end[0]], 1.0, atol=0.11) and np.isclose(x[end[1]], 0.0)
    saddle = 20 * 41 + 20
    right_min = int(np.argmin(np.where(X > 0, v, np.inf)))
    ((row, arc),) = merge_tree_arcs(v, np.array([[right_min, saddle]]), (x, x))
    assert row == 0 and arc[0] == saddle and arc[-1] == right_min


def test_field_dataset_uses_topology_segmentation():
    field = double_well()
    summary = analyze(field, min_persistence=0.05)
    ds = field_dataset(field, summary)
    assert ds["basin"].dtype == np.int32
    np.testing.assert_array_equal(ds["basin"], summary.join_tree.branch_segmentation.ravel("F"))
    assert "basin" not in field_dataset(field).point_data.keys()
