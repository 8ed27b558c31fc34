import h5py
import numpy as np
import pytest

from losstopo import Grid, LossField, ProjectedPath, analyze
from losstopo.errors import (
    FieldFormatError,
    InvalidParameterError,
    InvalidTypeError,
    ShapeMismatchError,
)
from losstopo.jsonable import to_jsonable
from losstopo.testing import analytic_field


def make_field():
    g = Grid.square(resolution=7, n_components=2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    path = ProjectedPath(coords=[[0.5, 0.5], [0.0, 0.1]], step=[0, 5], loss=[1.0, 0.1], run="a")
    return LossField(
        x**2 + y**2,
        g,
        metrics={"accuracy": 1 - x**2},
        attrs={"seed": 3, "nested": {"k": [1, 2]}},
        paths={"a": path},
    )


def test_roundtrip_exact(tmp_path):
    f = make_field()
    f.save(tmp_path / "f.h5")
    g = LossField.load(tmp_path / "f.h5")
    np.testing.assert_array_equal(g.values, f.values)
    np.testing.assert_array_equal(g.metrics["accuracy"], f.metrics["accuracy"])
    assert g.grid == f.grid
    assert g.attrs == f.attrs
    np.testing.assert_array_equal(g.paths["a"].coords, f.paths["a"].coords)
    np.testing.assert_array_equal(g.paths["a"].step, [0, 5])
    np.testing.assert_array_equal(g.paths["a"].loss, f.paths["a"].loss)
    assert g.paths["a"].run == "a" and g.topology is None
    assert g.equals(f) and f.equals(g)


def test_shape_mismatch():
    with pytest.raises(ShapeMismatchError, match="grid has shape"):
        LossField(np.zeros(5), Grid.square(resolution=3))


def test_missing_directory(tmp_path):
    with pytest.raises(InvalidParameterError, match="does not exist"):
        make_field().save(tmp_path / "nope" / "f.h5")


def test_foreign_and_corrupt_files(tmp_path):
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(FieldFormatError, match="not a losstopo field"):
        LossField.load(tmp_path / "foreign.h5")
    (tmp_path / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(FieldFormatError, match="not a readable HDF5"):
        LossField.load(tmp_path / "corrupt.h5")
    with pytest.raises(FieldFormatError, match="does not exist"):
        LossField.load(tmp_path / "missing.h5")


def test_failed_save_keeps_old_file(tmp_path):
    f = make_field()
    f.save(tmp_path / "f.h5")
    before = (tmp_path / "f.h5").read_bytes()
    bad = LossField(f.values, f.grid, attrs={"x": 1})
    object.__setattr__(bad, "metrics", {"bad": object()})  # make writing fail midway
    with pytest.raises(TypeError):
        bad.save(tmp_path / "f.h5")
    assert (tmp_path / "f.h5").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]


def test_equals_compares_every_part():
    f = make_field()
    assert f.equals(make_field()) and not f == make_field()  # == is identity, and never raises
    nan = LossField(np.where(f.values > 1, np.nan, f.values), f.grid)
    assert nan.equals(LossField(nan.values.copy(), f.grid))  # NaN equals NaN
    shifted = LossField(f.values + 1e-9, f.grid, f.metrics, f.attrs, f.paths)
    assert not f.equals(shifted) and f.equals(shifted, atol=1e-8)
    moved = ProjectedPath(coords=[[0.5, 0.5], [0.0, 0.2]], step=[0, 5], loss=[1.0, 0.1], run="a")
    renamed = ProjectedPath(coords=[[0.5, 0.5], [0.0, 0.1]], step=[0, 5], loss=[1.0, 0.1], run="b")
    other_grid = Grid({"x": f.grid.axes["x"], "z": f.grid.axes["y"]})
    for other in [
        LossField(f.values, other_grid, f.metrics, f.attrs, f.paths),
        LossField(f.values, f.grid, {"accuracy": -f.metrics["accuracy"]}, f.attrs, f.paths),
        LossField(f.values, f.grid, {}, f.attrs, f.paths),
        LossField(f.values, f.grid, f.metrics, {"seed": 4, "nested": {"k": [1, 2]}}, f.paths),
        LossField(f.values, f.grid, f.metrics, f.attrs, {"a": moved}),
        LossField(f.values, f.grid, f.metrics, f.attrs, {}),
        LossField(f.values, f.grid, f.metrics, f.attrs, {"a": renamed}),
        f.with_topology(analyze(f)),
    ]:
        assert not f.equals(other) and not other.equals(f)
    assert not f.equals(f.values)


def test_topology_must_be_a_summary():
    f = make_field()
    summary = analyze(f)
    with pytest.raises(InvalidTypeError, match="must be a losstopo.TopologySummary"):
        f.with_topology(summary.to_dict())
    with pytest.raises(InvalidTypeError, match="got dict"):
        LossField(f.values, f.grid, topology={"n_minima": 1})
    assert f.with_topology(summary).topology is summary
    assert f.with_topology(summary).with_topology(None).topology is None


def assert_same_topology(back, topo):
    for part in ("critical_points", "join_tree", "split_tree"):
        assert getattr(back, part) is not None, part
    assert back.critical_counts == topo.critical_counts
    assert (back.n_minima, back.n_saddles, back.n_maxima) == (
        topo.n_minima,
        topo.n_saddles,
        topo.n_maxima,
    )
    np.testing.assert_array_equal(back.persistent.index, topo.persistent.index)
    np.testing.assert_array_equal(back.critical_points.index, topo.critical_points.index)
    np.testing.assert_array_equal(back.critical_points.type, topo.critical_points.type)
    for tree in ("join_tree", "split_tree"):
        a, b = getattr(back, tree), getattr(topo, tree)
        np.testing.assert_array_equal(a.pairs, b.pairs)
        np.testing.assert_array_equal(a.arcs, b.arcs)
        np.testing.assert_array_equal(a.segmentation, b.segmentation)
    for k in topo.diagram.dims:
        np.testing.assert_array_equal(back.diagram[k], topo.diagram[k])


def test_topology_roundtrip_keeps_its_shape(tmp_path):
    f = analytic_field("himmelblau", resolution=21)
    topo = analyze(f, min_persistence=0.01)
    assert topo.n_saddles > 0
    f.with_topology(topo).save(tmp_path / "t.h5")
    back = LossField.load(tmp_path / "t.h5")
    assert back.equals(f.with_topology(topo))
    assert_same_topology(back.topology, topo)


def test_to_xarray_keeps_coordinates_metrics_paths_and_attrs():
    f = make_field()
    ds = f.to_xarray()
    assert set(ds.data_vars) == {"loss", "accuracy", "path0_coords", "path0_step", "path0_loss"}
    assert ds["loss"].dims == ("x", "y") and ds["accuracy"].dims == ("x", "y")
    np.testing.assert_array_equal(ds["x"].values, np.linspace(-1, 1, 7))
    np.testing.assert_array_equal(ds["y"].values, np.linspace(-1, 1, 7))
    x, y = np.meshgrid(np.linspace(-1, 1, 7), np.linspace(-1, 1, 7), indexing="ij")
    np.testing.assert_array_equal(ds["loss"].values, x**2 + y**2)
    assert float(ds["loss"].sel(x=1.0, y=-1.0)) == 2.0
    np.testing.assert_array_equal(ds["accuracy"].values, 1 - x**2)
    np.testing.assert_array_equal(ds["path0_coords"].values, [[0.5, 0.5], [0.0, 0.1]])
    np.testing.assert_array_equal(ds["path0_step"].values, [0, 5])
    np.testing.assert_array_equal(ds["path0_loss"].values, [1.0, 0.1])
    assert ds.attrs["seed"] == 3 and ds.attrs["nested"] == '{"k": [1, 2]}'


def test_xarray_roundtrip_is_exact():
    f = make_field()
    two = f.with_paths(
        {"b": ProjectedPath(coords=np.arange(6.0).reshape(3, 2), step=[1, 2, 3], run="run b")}
    )
    two = LossField(
        two.values, two.grid, two.metrics, {**two.attrs, "flag": True, "tag": "t"}, two.paths
    )
    back = LossField.from_xarray(two.to_xarray())
    assert back.equals(two)
    assert back.attrs == {"seed": 3, "nested": {"k": [1, 2]}, "flag": True, "tag": "t"}
    assert back.paths["b"].loss is None and back.paths["b"].run == "run b"
    assert back.grid == two.grid


def test_from_xarray_reads_a_plain_dataset():
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset(
        {"loss": (("a", "b"), np.arange(6.0).reshape(2, 3)), "acc": (("a", "b"), np.ones((2, 3)))},
        coords={"a": [0.0, 1.0], "b": [0.0, 0.5, 1.0]},
        attrs={"source": "elsewhere"},
    )
    f = LossField.from_xarray(ds)
    assert f.grid == Grid({"a": [0.0, 1.0], "b": [0.0, 0.5, 1.0]})
    np.testing.assert_array_equal(f.values, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(f.metrics["acc"], np.ones((2, 3)))
    assert f.attrs == {"source": "elsewhere"}
    with pytest.raises(InvalidTypeError, match="'loss' variable"):
        LossField.from_xarray(ds.drop_vars("loss"))


def test_to_jsonable_encodes_non_finite_numbers():
    assert to_jsonable({"a": (np.float64("nan"), -np.inf), 1: np.arange(2)}) == {
        "a": ["nan", "-inf"],
        "1": [0, 1],
    }


def test_xarray_form_survives_netcdf(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("scipy.io")
    f = make_field()
    f.to_xarray().to_netcdf(tmp_path / "f.nc", engine="scipy")
    with xr.open_dataset(tmp_path / "f.nc", engine="scipy") as ds:
        back = LossField.from_xarray(ds.load())
    assert back.equals(f) and back.attrs == {"seed": 3, "nested": {"k": [1, 2]}}
