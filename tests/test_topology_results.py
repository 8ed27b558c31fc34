"""The result classes as the interface: exact JSON and HDF5 round trips, adapters, JSON encoding."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest

from losstopo import Grid, LossField
from losstopo.errors import FieldFormatError, InvalidTypeError
from losstopo.io.topology import read_topology, write_topology
from losstopo.topology import (
    BasinTable,
    CriticalPoints,
    MergeTree,
    PersistenceDiagram,
    TopologySummary,
    analyze,
    critical_points,
    log_loss_values,
    merge_tree,
    persistence_diagram,
    to_jsonable,
)


def assert_fields_equal(a, b, where="summary"):
    """Every dataclass field equal: same type, arrays equal in dtype, shape and values."""
    assert type(a) is type(b), where
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.name == "_raw":  # a tree's sweep, kept for simplify(), is not stored
                continue
            assert_fields_equal(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_fields_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert to_jsonable(a) == to_jsonable(b), where
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def _field(ndim: int = 2) -> LossField:
    rng = np.random.default_rng(ndim)
    if ndim == 2:
        g = Grid.square(31, 2.0, 2)
        x, y = np.meshgrid(*g.axes.values(), indexing="ij")
        v = (x**2 - 1) ** 2 + y**2 + 0.3 * x + 0.05 * rng.random(g.shape)
    else:
        g = Grid.square(7, 1.0, 3)
        v = rng.random(g.shape)
    v[0, :2] = np.nan
    v[-1, -1] = np.inf
    return LossField(v, g, attrs={"projector": {"kind": "pca", "seed": 3}, "split": "train"})


CASES = [
    pytest.param(2, "freudenthal", True, id="2d-freudenthal"),
    pytest.param(3, "cubical", False, id="3d-cubical-no-hessian"),
]


@pytest.mark.parametrize("ndim, connectivity, hessian", CASES)
def test_dict_round_trip_is_exact(ndim, connectivity, hessian):
    s = analyze(_field(ndim), min_persistence=0.05, connectivity=connectivity, hessian=hessian)
    assert s.critical_points is not None and s.join_tree is not None and s.split_tree is not None
    text = json.dumps(s.to_dict(), allow_nan=False)  # strict JSON: no NaN/Infinity tokens
    back = TopologySummary.from_dict(json.loads(text))
    assert_fields_equal(back, s)
    assert back.equals(s) and s.equals(back)
    # the full diagram, not only the pairs above the threshold
    assert back.diagram[0].shape == s.diagram[0].shape
    assert (s.diagram.persistence(0) < 0.05).any()


@pytest.mark.parametrize("ndim, connectivity, hessian", CASES)
def test_hdf5_round_trip_is_exact(tmp_path, ndim, connectivity, hessian):
    s = analyze(_field(ndim), min_persistence=0.05, connectivity=connectivity, hessian=hessian)
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        write_topology(f.create_group("topology"), s)
    with h5py.File(path, "r") as f:
        seg = f["topology/join_tree/branch_segmentation"]
        assert isinstance(seg, h5py.Dataset) and seg.dtype == np.int64 and seg.shape == s.shape
        assert isinstance(f["topology/critical_points/index"], h5py.Dataset)
        back = read_topology(f["topology"])
    assert_fields_equal(back, s)
    assert back.equals(s)


def test_round_trip_through_loss_field(tmp_path):
    field = _field(2)
    s = analyze(field, min_persistence=0.05)
    field.with_topology(s).save(tmp_path / "f.h5")
    back = LossField.load(tmp_path / "f.h5").topology
    assert_fields_equal(back, s)


def test_equals_sees_every_difference():
    field = _field(2)
    s = analyze(field, min_persistence=0.05)
    assert not s.equals(analyze(field, min_persistence=0.5))
    assert not s.equals(analyze(field, min_persistence=0.05, connectivity="cubical"))
    assert not s.equals(dataclasses.replace(s, attrs={}))
    seg = s.join_tree.branch_segmentation.copy()
    seg[5, 5] += 1
    assert not s.join_tree.equals(dataclasses.replace(s.join_tree, branch_segmentation=seg))
    assert not s.equals(s.to_dict())


def test_read_topology_rejects_a_damaged_group(tmp_path):
    with h5py.File(tmp_path / "t.h5", "w") as f:
        g = f.create_group("topology")
        g.attrs["connectivity"] = "freudenthal"
        with pytest.raises(FieldFormatError, match="damaged"):
            read_topology(g)
        with pytest.raises(InvalidTypeError, match="TopologySummary"):
            write_topology(f.create_group("x"), {"connectivity": "freudenthal"})


def test_summary_of_losstopo_0_1_still_reads():
    s = analyze(_field(2), min_persistence=0.05)
    old = s.to_dict()
    for name in ("critical_points", "join_tree", "split_tree"):
        del old[name]
    old["schema"] = "losstopo-topology/1"
    back = TopologySummary.from_dict(old)
    assert back.trees() == () and back.basin_segmentation() is None
    np.testing.assert_array_equal(back.critical_persistence(), s.critical_persistence())


def test_analyze_carries_the_field_provenance():
    field = _field(2)
    s = analyze(field)
    assert s.attrs["field"] == {"projector": {"kind": "pca", "seed": 3}, "split": "train"}
    field.attrs["projector"]["seed"] = 4  # a copy, not a view
    assert s.attrs["field"]["projector"]["seed"] == 3
    assert "field" not in analyze(field.values).attrs
    assert "losstopo_version" in s.attrs


# ------------------------------------------------------------------------------ adapters
def _brute_pairs(index, trees):
    """The first pair (trees, rows, birth before death) each vertex belongs to, by a loop."""
    where: dict[int, tuple[float, int]] = {}
    offset = 0
    for t in trees:
        for row, ((b, d), (bv, dv)) in enumerate(zip(t.pairs, t.pair_index, strict=True)):
            for v in (bv, dv):
                if v >= 0:
                    where.setdefault(int(v), (abs(d - b), offset + row))
        offset += len(t.pairs)
    pers = np.array([where.get(int(v), (np.nan, -1))[0] for v in index])
    ids = np.array([where.get(int(v), (np.nan, -1))[1] for v in index])
    return pers, ids


@pytest.mark.parametrize("seed", range(4))
def test_critical_persistence_and_pair_ids_match_a_loop(seed):
    f = np.random.default_rng(seed).random((9, 8))
    cp = critical_points(f, hessian=False)
    trees = (merge_tree(f, min_persistence=0.1), merge_tree(f, "split", min_persistence=0.1))
    pers, ids = _brute_pairs(cp.index, trees)
    np.testing.assert_array_equal(cp.persistence(*trees), pers)
    np.testing.assert_array_equal(cp.pair_ids(*trees), ids)
    s = analyze(f, min_persistence=0.1, hessian=False)
    pers, ids = _brute_pairs(s.persistent.index, s.trees())
    np.testing.assert_array_equal(s.critical_persistence(), pers)
    np.testing.assert_array_equal(s.critical_pair_ids(), ids)
    essential = [s.join_pair_index[-1, 0], s.split_pair_index[-1, 0]]  # global min, max
    np.testing.assert_array_equal(
        np.isinf(s.critical_persistence()), np.isin(s.persistent.index, essential)
    )


def test_summary_views():
    s = analyze(_field(2), min_persistence=0.05)
    assert s.trees() == (s.join_tree, s.split_tree)
    assert s.basin_segmentation() is s.join_tree.branch_segmentation
    # basin labels are rows of join_pairs: label i holds the minimum of row i
    for i, (m, _) in enumerate(s.join_pair_index):
        assert s.basin_segmentation().ravel()[m] == i


def test_diagram_items_pairs_persistence():
    f = np.random.default_rng(1).random((6, 6))
    dgm = persistence_diagram(f)
    assert [k for k, _ in dgm.items()] == [0, 1]
    for k, d in dgm.items():
        assert d is dgm[k] and dgm.pairs(k) is dgm[k]
        np.testing.assert_array_equal(dgm.persistence(k), d[:, 1] - d[:, 0])
    back = PersistenceDiagram.from_dict(json.loads(json.dumps(dgm.to_dict())))
    assert_fields_equal(back, dgm)


def test_part_round_trips():
    f = np.random.default_rng(2).random((7, 5))
    cp = critical_points(f)
    assert_fields_equal(CriticalPoints.from_dict(json.loads(json.dumps(cp.to_dict()))), cp)
    t = merge_tree(f, "split", min_persistence=0.2)
    back = MergeTree.from_dict(json.loads(json.dumps(t.to_dict())), f.shape)
    assert_fields_equal(back, t)
    with pytest.raises(ValueError, match="cannot be simplified"):
        back.simplify(0.3)
    table = analyze(f, min_persistence=0.1).basins
    assert_fields_equal(BasinTable.from_dict(json.loads(json.dumps(table.to_dict()))), table)


def test_to_jsonable_encodes_non_finite_once():
    obj = {
        1: np.array([[0.0, np.inf], [-np.inf, np.nan]]),
        "t": (np.int32(3), np.float32(0.5), np.bool_(True), None, "s"),
        "nested": [{"x": float("nan")}],
    }
    out = to_jsonable(obj)
    assert out == {
        "1": [[0.0, "inf"], ["-inf", "nan"]],
        "t": [3, 0.5, True, None, "s"],
        "nested": [{"x": "nan"}],
    }
    json.dumps(out, allow_nan=False)
    assert type(out["t"][0]) is int and type(out["t"][2]) is bool


def test_log_loss_values():
    out = log_loss_values(np.array([-1.0, 0.0, 1.0, np.nan, np.inf]))
    np.testing.assert_allclose(out[:3], np.log10(np.array([-1.0, 0.0, 1.0]) + 1 + 2e-4))
    assert np.isnan(out[3:]).all()
    np.testing.assert_array_equal(log_loss_values(np.array([1.0, 100.0])), [0.0, 2.0])
