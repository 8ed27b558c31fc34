"""The topology, export and report commands, and the demo end to end."""

import json
import subprocess
import sys

import numpy as np
import pytest

from losstopo import Grid, LossField
from losstopo.cli import main


@pytest.fixture
def double_well(tmp_path):
    g = Grid({"x": np.linspace(-2, 2, 41), "y": np.linspace(-1, 1, 21)})
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    path = tmp_path / "well.h5"
    LossField((x**2 - 1) ** 2 + y**2, g).save(path)
    return path


def test_topology_command(double_well, tmp_path, capsys):
    out = tmp_path / "topo.json"
    assert main(["topology", str(double_well), "--min-persistence", "0.1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "persistent: 2 minima, 1 saddles" in text
    data = json.loads(out.read_text())
    assert data["connectivity"] == "freudenthal"
    assert main(["topology", str(double_well), "--connectivity", "cubical"]) == 0


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
    assert main(["export", str(double_well), "--out", str(tmp_path / "pv")]) == 0
    names = {p.name for p in (tmp_path / "pv").iterdir()}
    assert {"field.vti", "landscape.vtm", "open_in_paraview.py"} <= names
    assert (
        main(["export", str(double_well), "--out", str(tmp_path / "ply"), "--format", "ply"]) == 0
    )
    assert (tmp_path / "ply" / "well.ply").read_bytes().startswith(b"ply\nformat binary")


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
            # the last checkpoint's loss on its path: PCA centres the plane on it, the
            # auto-encoder reconstructs it exactly
            assert path.loss[-1] == pytest.approx(summary["models"][name]["train_loss"], rel=1e-3)
            assert proj[name][kind]["persistent_minima"] >= 1
        assert sum(proj[name]["pca"]["explained_variance_ratio"]) <= 1.0
        fid = proj["fidelity"][name]
        assert set(fid) == {"pca", "kpca", "umap", "autoencoder"}
        best = min(fid[p]["mean_projection_error"] for p in ("pca", "kpca", "umap"))
        assert fid["autoencoder"]["mean_projection_error"] < best / 100
    glob = LossField.load(out / "global_autoencoder.h5")
    assert set(glob.paths) == {"mlp-seed0", "mlp-seed1"}
    assert set(proj["global"]["end_basins"]) == {"mlp-seed0", "mlp-seed1"}
    assert (out / "paraview" / "global_autoencoder" / "landscape.vtm").exists()
    for name in ("mlp", "cnn", "global"):
        assert (out / f"fidelity_{name}.csv").exists() and (out / f"fidelity_{name}.png").exists()
    html = (out / "report.html").read_text()
    assert "Projector fidelity" in html and "fidelity_global.csv" in html
