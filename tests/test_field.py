import h5py
import numpy as np
import pytest

from losstopo import Grid, LossField, ProjectedPath
from losstopo.errors import FieldFormatError, InvalidParameterError, ShapeMismatchError


def make_field():
    g = Grid.square(resolution=7, dims=2)
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
    np.testing.assert_array_equal(g.paths["a"].loss, f.paths["a"].loss)


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


def test_to_xarray():
    ds = make_field().to_xarray()
    assert set(ds.data_vars) == {"loss", "accuracy"}
    assert ds["loss"].dims == ("x", "y")
