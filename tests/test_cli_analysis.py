"""The topology, export and report commands, and the demo end to end."""

import json
import subprocess
import sys

import numpy as np
import pytest

from losstopo import Grid, LossField, TopologyCheck
from losstopo.cli import main
from losstopo.jsonable import to_jsonable


@pytest.fixture
def double_well(tmp_path):
    g = Grid({"x": np.linspace(-2, 2, 41), "y": np.linspace(-1, 1, 21)})
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    path = tmp_path / "well.h5"
    LossField((x**2 - 1) ** 2 + y**2, g).save(path)
    return path


def test_topology_command(double_well, tmp_path, capsys):
    """The JSON holds the double well's analytic critical points and basins."""
    out = tmp_path / "topo.json"
    assert main(["topology", str(double_well), "--min-persistence", "0.1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "persistent: 2 minima, 1 saddles" in text
    data = json.loads(out.read_text())
    assert data["connectivity"] == "freudenthal" and data["min_persistence"] == 0.1
    crit = data["persistent"]
    found = sorted(zip(crit["type"], map(tuple, crit["coords"]), crit["value"], strict=True))
    # (x^2 - 1)^2 + y^2: minima (type 0) 0 at (+-1, 0), a saddle (type 1) 1 at the origin
    assert found == [(0, (-1.0, 0.0), 0.0), (0, (1.0, 0.0), 0.0), (1, (0.0, 0.0), 1.0)]
    basins = data["basins"]["columns"]
    assert basins["persistence"] == ["inf", 1.0]  # the barrier between the wells
    assert basins["saddle_value"] == ["inf", 1.0]
    assert main(["topology", str(double_well), "--connectivity", "cubical"]) == 0
    assert LossField.load(double_well).topology is None
    assert main(["topology", str(double_well), "--min-persistence", "0.1", "--save"]) == 0
    stored = LossField.load(double_well)
    assert stored.topology.n_minima == 2 and stored.topology.min_persistence == 0.1
    assert to_jsonable(stored.topology.to_dict())["persistent"] == crit  # same as the JSON


def test_topology_bad_input_exit_2(double_well, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "losstopo.cli",
            "topology",
            str(double_well),
            "--min-persistence",
            "-1",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "min-persistence" in r.stderr and "Traceback" not in r.stderr


def test_export_command(double_well, tmp_path, capsys):
    """The .vti holds the field's values on its grid; the PLY one vertex per grid point."""
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    assert main(["export", str(double_well), "--out", str(tmp_path / "pv")]) == 0
    names = {p.name for p in (tmp_path / "pv").iterdir()}
    assert {"field.vti", "landscape.vtm", "open_in_paraview.py"} <= names
    field = LossField.load(double_well)
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(tmp_path / "pv" / "field.vti"))
    reader.Update()
    image = reader.GetOutput()
    assert image.GetDimensions() == (41, 21, 1)
    assert image.GetSpacing()[:2] == pytest.approx((0.1, 0.1))
    values = vtk_to_numpy(image.GetPointData().GetScalars())
    np.testing.assert_allclose(values.reshape(21, 41).T, field.values, rtol=1e-6)
    assert (
        main(["export", str(double_well), "--out", str(tmp_path / "ply"), "--format", "ply"]) == 0
    )
    ply = (tmp_path / "ply" / "well.ply").read_bytes()
    assert ply.startswith(b"ply\nformat binary") and b"element vertex 861\n" in ply  # 41 x 21


def test_export_ply_of_1d_field_refused(tmp_path):
    path = tmp_path / "line.h5"
    LossField(np.linspace(0, 1, 5) ** 2, Grid({"alpha": np.linspace(0, 1, 5)})).save(path)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "losstopo.cli",
            "export",
            str(path),
            "--out",
            str(tmp_path / "o"),
            "--format",
            "ply",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and ".vti" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()  # a refused export leaves no empty directory


def test_export_computes_topology_for_a_field_without_one(double_well, tmp_path):
    """A field without topology gets one computed; a stored one is exported as read back."""
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    from losstopo.topology import analyze

    assert main(["export", str(double_well), "--out", str(tmp_path / "a")]) == 0
    names = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"critical_points.vtp", "persistence_diagram.vtp"} <= names
    # a summary stored with the field is read back whole (segmentation included) and exported
    field = LossField.load(double_well)
    with_topo = tmp_path / "with_topo.h5"
    field.with_topology(analyze(field, min_persistence=0.1)).save(with_topo)
    assert main(["export", str(with_topo), "--out", str(tmp_path / "b")]) == 0
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(tmp_path / "b" / "field.vti"))
    reader.Update()
    point_data = reader.GetOutput().GetPointData()
    arrays = [point_data.GetArrayName(i) for i in range(point_data.GetNumberOfArrays())]
    basin_name = next(a for a in arrays if "basin" in a.lower())
    assert len(np.unique(vtk_to_numpy(point_data.GetArray(basin_name)))) == 2  # two wells
    assert main(["export", str(with_topo), "--out", str(tmp_path / "c"), "--no-topology"]) == 0
    assert "critical_points.vtp" not in {p.name for p in (tmp_path / "c").iterdir()}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["landscape", "--model", "mlp", "--workers", "0", "--out", "{tmp}/w.h5"], "--workers"),
        (["landscape", "--model", "mlp", "--device", "nonsense", "--out", "{tmp}/d.h5"], "device"),
        (
            ["landscape", "--model", "mlp", "--data", "os:no_such_name", "--out", "{tmp}/m.h5"],
            "no attribute",
        ),  # fmt: skip
        (
            ["landscape", "--model", "mlp", "--data", "json:loads", "--out", "{tmp}/x.h5"],
            "raised TypeError",
        ),  # fmt: skip
        (
            ["topology", "{tmp}/well.h5", "--json", "/proc/t.json"],
            "/proc for --json is not writable",
        ),
        (["report", "{tmp}", "--out", "/proc/r.html"], "/proc for --out is not writable"),
        (["export", "{tmp}/well.h5", "--out", "/proc/pv"], "/proc for --out is not writable"),
        (["report", "{tmp}", "--out", "{tmp}"], "is a directory; give a file name"),
        (["export", "{tmp}/well.h5", "--out", "{tmp}/well.h5"], "is a file, not a directory"),
        (["export", "{tmp}/well.h5", "--out", "{tmp}/no/pv"], "does not exist; create it first"),
    ],
)
def test_cli_mistakes_exit_2_with_one_sentence(double_well, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    before = double_well.read_bytes()
    r = subprocess.run(
        [sys.executable, "-m", "losstopo.cli", *argv, "--quiet"]
        if argv[0] == "landscape"
        else [sys.executable, "-m", "losstopo.cli", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert double_well.read_bytes() == before  # nothing saved is touched


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "losstopo.cli", "demo", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) >= {"mlp", "cnn"}
    for name in ("mlp", "cnn"):
        m = summary["models"][name]
        assert m["test_accuracy"] > 0.9
        assert m["plane"]["min_loss"] <= m["plane"]["centre_loss"]
        # every reported loss says which BatchNorm statistics it used
        assert m["batchnorm"] and m["plane"]["batchnorm"] and m["interpolation"]["batchnorm"]
        field = LossField.load(out / f"{name}_plane.h5")
        assert field.topology is not None and len(field.paths[name]) > 2
        for png in ("contour", "surface", "interpolation", "merge_tree", "persistence"):
            assert (out / f"{name}_{png}.png").stat().st_size > 1000
        assert (out / "paraview" / name / "landscape.vtm").exists()
    assert json.loads((out / "topology.json").read_text()).keys() >= {"mlp", "cnn"}
    assert (out / "report.html").stat().st_size > 10000
    # part two: trajectory PCA, auto-encoder and global landscapes, fidelity tables
    proj = summary["projectors"]
    for name in ("mlp", "cnn"):
        for kind in ("pca", "autoencoder"):
            field = LossField.load(out / f"{name}_{kind}.h5")
            path = field.paths[name]
            assert field.attrs["projector"]["name"].lower().startswith(kind[:3])
            assert np.all(np.isfinite(field.values)) and field.topology is not None
            if kind == "pca":  # PCA centres the plane on the last checkpoint
                last = summary["models"][name]["train_loss"]
                assert path.loss[-1] == pytest.approx(last, rel=1e-3)
            assert proj[name][kind]["persistent_minima"] >= 1
        assert sum(proj[name]["pca"]["explained_variance_ratio"]) <= 1.0
        fid = proj["fidelity"][name]
        assert set(fid) == {"pca", "kpca", "umap", "autoencoder"}
        # between the checkpoints (held out) the auto-encoder's sheet is closer than PCA's plane
        held = {p: fid[p]["holdout_mean_projection_error"] for p in fid}
        assert held["autoencoder"] < held["pca"]
        assert fid["autoencoder"]["mean_projection_error"] < fid["pca"]["mean_projection_error"]
    glob = LossField.load(out / "global_autoencoder.h5")
    assert set(glob.paths) == {"mlp-seed0", "mlp-seed1"}
    assert set(proj["global"]["end_basins"]) == {"mlp-seed0", "mlp-seed1"}
    assert (out / "paraview" / "global_autoencoder" / "landscape.vtm").exists()
    # both checked pictures: every minimum checked, one separation per merge
    for checked in (proj["global"]["verify"], summary["models"]["mlp"]["verify"]):
        assert checked["separations"] == checked["minima"] - 1
        assert 0 <= checked["artifact_minima"] < checked["minima"]
    assert TopologyCheck.from_summary(glob.topology) is not None
    for name in ("mlp", "cnn", "global"):
        assert (out / f"fidelity_{name}.csv").exists() and (out / f"fidelity_{name}.png").exists()
    cnn = summary["models"]["cnn"]
    assert cnn["batchnorm"].startswith("recomputed") and cnn["plane"]["batchnorm"].startswith(
        "running"
    )
    assert summary["models"]["mlp"]["batchnorm"].startswith("none")
    html = (out / "report.html").read_text()
    assert "recomputed: statistics re-estimated" in html
    assert "Projector fidelity" in html and "fidelity_global.csv" in html
    conn = proj["connectivity"]  # part three: the two MLP runs' barriers
    assert conn["ratio_to_linear"]["weights"] <= 0.15 and conn["ratio_to_linear"]["bezier"] <= 0.1
    assert (out / "connectivity" / "plane.h5").exists()
    assert (out / "paraview" / "connectivity" / "landscape.vtm").exists()
    aligned = LossField.load(out / "global_autoencoder_aligned.h5")  # GlobScope after alignment
    assert set(aligned.paths) == {"mlp-seed0", "mlp-seed1-aligned"}
    # the Hessian step: eigenvalues descending, a curvature map, the plane's check stored
    hess = summary["models"]["mlp"]["hessian"]
    assert hess["eigenvalues"] == sorted(hess["eigenvalues"], reverse=True)
    assert hess["eigenvalues"][0] > 0 and hess["trace"] > 0
    cmap = LossField.load(out / "mlp_curvature_map.h5")
    assert set(cmap.metrics) == {"lambda_max", "lambda_min"}
    assert np.all(cmap.metrics["lambda_max"] >= cmap.metrics["lambda_min"])
    from losstopo import CriticalCheck

    plane = LossField.load(out / "mlp_plane.h5")
    check = CriticalCheck.from_summary(plane.topology)
    assert check is not None and len(check) == len(plane.topology.persistent)
    assert hess["full_space_check"]["critical_points"] == len(check)
    for name in ("mlp", "cnn"):
        assert (out / f"{name}_spectral_density.png").stat().st_size > 0
    assert "Critical points in the full parameter space" in html


def test_topology_save_keeps_a_store_resumable(tmp_path, tiny_model, tiny_data):
    from losstopo import PlaneProjector, evaluate, random_directions

    store = tmp_path / "run.h5"
    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0))

    def run():
        return evaluate(
            tiny_model, tiny_data, "cross_entropy", proj, Grid.square(5), store=store,
            progress=False,
        )  # fmt: skip

    first = run()
    assert main(["topology", str(store), "--save"]) == 0
    again = run()  # the store is still recognised as this computation's
    np.testing.assert_array_equal(again.values, first.values)
    assert LossField.load(store).topology is not None
