import json

import h5py
import numpy as np
import pytest

from losstopo import Grid, LossField, ProjectedPath, analyze
from losstopo.errors import FieldFormatError, InvalidParameterError, InvalidTypeError
from losstopo.io import (
    FORMAT_NAME,
    FORMAT_VERSION,
    open_field_file,
    read_field,
    read_fingerprint,
    read_partial,
    read_progress,
    store_topology,
    write_atomically,
    write_field,
    write_store,
)
from losstopo.jsonable import to_jsonable
from losstopo.testing import analytic_field


def field_with_everything():
    f = analytic_field("double_well", resolution=15)
    path = ProjectedPath(coords=[[1.0, 0.0], [0.5, 0.25]], step=[3, 7], loss=[0.0, 0.6], run="r")
    return LossField(
        f.values,
        f.grid,
        metrics={"accuracy": np.where(f.values < 0.5, 1.0, 0.0)},
        attrs={**f.attrs, "seeds": [0, 1], "diverged": float("inf")},
        paths={"r": path},
    )


def write_format1(path, field, *, topology=None, complete=True, done=None, fingerprint=None):
    """The layout losstopo wrote before topology had its own group (format version 1)."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "losstopo-field"
        f.attrs["format_version"] = 1
        f.attrs["losstopo_version"] = "0.1.0"
        f.attrs["complete"] = complete
        f.attrs["axis_names"] = json.dumps(list(field.grid.names))
        f.attrs["attrs_json"] = json.dumps(to_jsonable(field.attrs))
        g = f.create_group("grid")
        for name, axis in field.grid.axes.items():
            g.create_dataset(name, data=axis)
        f.create_dataset("values", data=field.values)
        m = f.create_group("metrics")
        for name, arr in field.metrics.items():
            m.create_dataset(name, data=arr)
        p = f.create_group("paths")
        for name, pp in field.paths.items():
            pg = p.create_group(name)
            pg.attrs["run"] = pp.run
            pg.create_dataset("coords", data=pp.coords)
            pg.create_dataset("step", data=pp.step)
            if pp.loss is not None:
                pg.create_dataset("loss", data=pp.loss)
        if topology is not None:
            f.attrs["topology_json"] = json.dumps(to_jsonable(topology.to_dict()))
        if done is not None:
            f.create_dataset("done", data=done)
            f.attrs["fingerprint_json"] = json.dumps(fingerprint)


def test_write_and_read_field_are_exact(tmp_path):
    f = field_with_everything()
    write_field(tmp_path / "f.h5", f)
    back = read_field(tmp_path / "f.h5")
    assert back.equals(f)
    assert back.attrs["diverged"] == "inf" and back.attrs["seeds"] == [0, 1]
    assert read_progress(tmp_path / "f.h5") == (15 * 15, 15 * 15, True)
    assert read_fingerprint(tmp_path / "f.h5") is None
    with h5py.File(tmp_path / "f.h5") as h:
        assert h.attrs["format"] == FORMAT_NAME and h.attrs["format_version"] == FORMAT_VERSION
        np.testing.assert_array_equal(h["grid/x"][()], f.grid.axes["x"])
        np.testing.assert_array_equal(h["paths/r/step"][()], [3, 7])


def test_format1_file_loads(tmp_path):
    f = field_with_everything()
    topo = analyze(f, min_persistence=0.1)
    write_format1(tmp_path / "old.h5", f, topology=topo)
    back = LossField.load(tmp_path / "old.h5")
    assert back.equals(f.with_topology(topo))
    assert back.attrs["diverged"] == "inf"
    assert back.topology.n_minima == 2 and back.topology.n_saddles == 1
    np.testing.assert_array_equal(back.topology.join_pairs, topo.join_pairs)
    write_format1(tmp_path / "plain.h5", f)
    assert LossField.load(tmp_path / "plain.h5").topology is None


def test_format1_partial_store_reads_and_takes_topology(tmp_path):
    f = field_with_everything()
    done = np.zeros(f.grid.shape, dtype=bool)
    done[:3] = True
    values = np.where(done, f.values, np.nan)
    partial = LossField(values, f.grid, metrics={"accuracy": np.where(done, 1.0, np.nan)})
    write_format1(tmp_path / "s.h5", partial, complete=False, done=done, fingerprint={"grid": "g"})
    assert read_progress(tmp_path / "s.h5") == (45, 225, False)
    assert read_fingerprint(tmp_path / "s.h5") == {"grid": "g"}
    run = read_partial(tmp_path / "s.h5", ("accuracy",))
    np.testing.assert_array_equal(run.done, done.ravel())
    np.testing.assert_array_equal(run.values, values.ravel())
    np.testing.assert_array_equal(run.metrics["accuracy"], np.where(done, 1.0, np.nan).ravel())
    with pytest.raises(FieldFormatError, match="partial run \\(45 of 225 points\\)"):
        read_field(tmp_path / "s.h5")
    store_topology(tmp_path / "s.h5", analyze(f))
    assert read_progress(tmp_path / "s.h5") == (45, 225, False)
    assert read_fingerprint(tmp_path / "s.h5") == {"grid": "g"}
    with h5py.File(tmp_path / "s.h5") as h:
        assert "topology" in h and "topology_json" not in h.attrs
        np.testing.assert_array_equal(h["done"][()], done)


def test_store_roundtrip(tmp_path):
    f = field_with_everything()
    done = np.ones(f.grid.size, dtype=bool)
    write_store(tmp_path / "s.h5", f, done, {"model": "m", "grid": "g"}, complete=True)
    assert read_field(tmp_path / "s.h5").equals(f)
    assert read_fingerprint(tmp_path / "s.h5") == {"model": "m", "grid": "g"}
    assert read_progress(tmp_path / "s.h5") == (225, 225, True)
    with h5py.File(tmp_path / "s.h5", "r+") as h:
        del h["metrics/accuracy"]
    with pytest.raises(FieldFormatError, match="damaged partial run"):
        read_partial(tmp_path / "s.h5", ("accuracy",))


def test_store_topology_replaces_the_previous_one(tmp_path):
    f = field_with_everything()
    write_field(tmp_path / "f.h5", f.with_topology(analyze(f, min_persistence=0.0)))
    coarse = analyze(f, min_persistence=0.5)
    store_topology(tmp_path / "f.h5", coarse)
    back = read_field(tmp_path / "f.h5")
    assert back.equals(f.with_topology(coarse))
    assert back.topology.min_persistence == 0.5
    np.testing.assert_array_equal(back.topology.join_pairs, coarse.join_pairs)
    with pytest.raises(InvalidTypeError, match="TopologySummary"):
        store_topology(tmp_path / "f.h5", coarse.to_dict())
    with pytest.raises(FieldFormatError, match="does not exist"):
        store_topology(tmp_path / "missing.h5", coarse)


def test_open_field_file_errors(tmp_path):
    with pytest.raises(FieldFormatError, match="does not exist"):
        with open_field_file(tmp_path / "missing.h5"):
            pass
    with h5py.File(tmp_path / "foreign.h5", "w") as h:
        h["x"] = 1
    with pytest.raises(FieldFormatError, match="not a losstopo field"):
        read_progress(tmp_path / "foreign.h5")
    write_field(tmp_path / "new.h5", field_with_everything())
    with h5py.File(tmp_path / "new.h5", "r+") as h:
        h.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(FieldFormatError, match="newer than this losstopo reads"):
        read_field(tmp_path / "new.h5")
    with h5py.File(tmp_path / "nogrid.h5", "w") as h:
        h.attrs["format"] = FORMAT_NAME
        h.attrs["axis_names"] = '["x"]'
        h["values"] = np.zeros(3)
    with pytest.raises(FieldFormatError, match="damaged losstopo file"):
        read_field(tmp_path / "nogrid.h5")


def test_write_atomically_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.h5"
    write_atomically(target, lambda h: h.create_dataset("a", data=[1, 2]))

    def fail(h):
        h.create_dataset("b", data=[3])
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        write_atomically(target, fail, start_from_existing=True)
    with h5py.File(target) as h:
        assert list(h) == ["a"] and h["a"][()].tolist() == [1, 2]
    write_atomically(target, lambda h: h.create_dataset("b", data=[3]), start_from_existing=True)
    with h5py.File(target) as h:
        assert sorted(h) == ["a", "b"]
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]


def test_write_field_needs_an_existing_directory(tmp_path):
    with pytest.raises(InvalidParameterError, match="does not exist"):
        write_field(tmp_path / "no" / "f.h5", field_with_everything())
    with pytest.raises(InvalidParameterError, match="is a directory"):
        write_field(tmp_path, field_with_everything())


def test_read_progress_refuses_a_field_without_values(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as h:
        h.attrs["format"] = FORMAT_NAME
    with pytest.raises(FieldFormatError, match="no 'values' dataset"):
        read_progress(tmp_path / "f.h5")


def test_grid_axes_survive(tmp_path):
    g = Grid({"a": [-1.0, 0.5, 2.0], "b": [0.0, 1e-9]})
    write_field(tmp_path / "g.h5", LossField(np.arange(6.0).reshape(3, 2), g))
    back = read_field(tmp_path / "g.h5")
    assert back.grid.names == ("a", "b")
    np.testing.assert_array_equal(back.grid.axes["b"], [0.0, 1e-9])
    np.testing.assert_array_equal(back.values, np.arange(6.0).reshape(3, 2))
