"""The exported files, opened in the real ParaView (``pvpython``, Debian's ``paraview`` 5.11).

Every file is read with ParaView's own readers in a subprocess and checked against the field
(point counts, array names and ranges, bounds); the generated ``open_in_paraview.py`` runs end
to end and saves a screenshot. Rendering needs an X display: where ``$DISPLAY`` is unset the
script runs under ``xvfb-run`` (Debian's ``xvfb``), since Debian's ParaView has no EGL/OSMesa
offscreen build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyvista", reason="the export extra (pyvista, vtk) is not installed")

from losstopo import Grid, LossField, ProjectedPath  # noqa: E402
from losstopo.export import write_paraview  # noqa: E402

pytestmark = pytest.mark.paraview

PVPYTHON = shutil.which("pvpython")
needs_pvpython = pytest.mark.skipif(
    PVPYTHON is None,
    reason="pvpython not found: install ParaView (Debian: apt-get install paraview) to run the "
    "ParaView tests",
)

READER = r"""
import json, sys
from paraview import servermanager as sm
from paraview.simple import OpenDataFile
from vtkmodules.vtkCommonDataModel import vtkCompositeDataSet

def arrays(data):
    out = {}
    for i in range(data.GetNumberOfArrays()):
        a = data.GetAbstractArray(i)
        rng = list(a.GetRange(-1)) if hasattr(a, "GetRange") else None
        out[a.GetName()] = {"range": rng, "components": a.GetNumberOfComponents()}
    return out

result = {}
for path in sys.argv[1:]:
    reader = OpenDataFile(path)
    if reader is None:
        result[path] = {"error": "no reader"}
        continue
    reader.UpdatePipeline()
    data = sm.Fetch(reader)
    entry = {"reader": reader.GetXMLName(), "class": data.GetClassName()}
    if data.IsA("vtkMultiBlockDataSet"):
        entry["blocks"] = [data.GetMetaData(i).Get(vtkCompositeDataSet.NAME())
                           for i in range(data.GetNumberOfBlocks())]
        entry["block_points"] = [data.GetBlock(i).GetNumberOfPoints()
                                 for i in range(data.GetNumberOfBlocks())]
    else:
        entry.update(points=data.GetNumberOfPoints(), cells=data.GetNumberOfCells(),
                     bounds=list(data.GetBounds()), point=arrays(data.GetPointData()),
                     cell=arrays(data.GetCellData()), field=arrays(data.GetFieldData()))
    result[path] = entry
print("JSON" + json.dumps(result))
"""


def run_pvpython(
    args: list[str], *, display: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess:
    assert PVPYTHON is not None
    cmd = [PVPYTHON, *args]
    if display and not os.environ.get("DISPLAY"):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            pytest.skip(
                "rendering with pvpython needs an X display: set DISPLAY or install xvfb (apt-get install xvfb)"
            )
        cmd = [xvfb, "-a", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def read_in_paraview(tmp_path: Path, files: list[Path]) -> dict:
    script = tmp_path / "read_all.py"
    script.write_text(READER)
    proc = run_pvpython([str(script), *map(str, files)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("JSON"))
    bad = [x for x in proc.stderr.splitlines() if "ERR" in x or "Warning" in x or "newer" in x]
    assert not bad, "\n".join(bad)
    return {Path(k).name: v for k, v in json.loads(line[4:]).items()}


def well_2d() -> LossField:
    g = Grid({"x": np.linspace(-2.0, 2.0, 41), "y": np.linspace(-1.5, 1.5, 31)})
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    v = (x**2 - 1) ** 2 + y**2 + 0.3 * x + 0.5
    v[-1, -1] = np.nan
    paths = {
        "sgd": ProjectedPath(
            [[1.8, 1.2], [1.2, 0.4], [1.0, 0.0]], [0, 10, 20], loss=[5.0, 1.5, 0.8], run="sgd"
        ),
        "adam": ProjectedPath([[-1.8, -1.2], [-1.0, 0.0]], [0, 20], run="adam"),
    }
    return LossField(
        v,
        g,
        metrics={"accuracy": 1 / (1 + np.nan_to_num(v))},
        paths=paths,
        attrs={"projector": "pca"},
    )


def close(a: list[float], b: list[float]) -> bool:
    return bool(np.allclose(a, b, rtol=1e-9, atol=1e-9))


@needs_pvpython
def test_every_file_opens_in_paraview_with_the_right_content(tmp_path):
    topology = pytest.importorskip("losstopo.topology")
    field = well_2d()
    summary = topology.analyze(field, min_persistence=0.05)
    out2, out1, out3 = (tmp_path / d for d in ("two", "one", "three"))
    for d in (out2, out1, out3):
        d.mkdir()
    files = write_paraview(field, out2, topology=summary)
    g1 = Grid.square(51, 1.0, 1)
    f1 = LossField(g1.axes["x"] ** 2, g1)
    files1 = write_paraview(f1, out1, topology=topology.analyze(f1))
    g3 = Grid({"x": np.linspace(0, 1, 9), "y": np.linspace(-1, 1, 7), "z": np.linspace(2, 3, 5)})
    mesh = np.meshgrid(*g3.axes.values(), indexing="ij")
    f3 = LossField(sum(m**2 for m in mesh), g3)
    files3 = write_paraview(f3, out3, topology=topology.analyze(f3))
    seen2 = read_in_paraview(tmp_path, [p for p in files if p.suffix != ".py"])

    # field.vti: counts, bounds, arrays and ranges against the field
    img = seen2["field.vti"]
    assert img["class"] == "vtkImageData" and img["points"] == field.values.size
    assert close(img["bounds"], [-2.0, 2.0, -1.5, 1.5, 0.0, 0.0])
    assert {"loss", "log_loss", "valid", "accuracy", "basin"} <= set(img["point"])
    assert close(img["point"]["loss"]["range"], [np.nanmin(field.values), np.nanmax(field.values)])
    assert img["point"]["valid"]["range"] == [0.0, 1.0]
    assert close(
        img["point"]["accuracy"]["range"],
        [field.metrics["accuracy"].min(), field.metrics["accuracy"].max()],
    )
    assert "losstopo_attrs" in img["field"]

    surf = seen2["surface.vtp"]
    assert surf["points"] == field.values.size - 1  # the NaN corner is left out
    assert close(surf["bounds"][:4], [-2.0, 2.0, -1.5, 1.5])
    assert close(surf["bounds"][4:], [0.0, 2.0])  # heights span half the largest extent (4)
    assert close(surf["point"]["loss"]["range"], img["point"]["loss"]["range"])
    ply = seen2["surface.ply"]
    assert ply["reader"] == "PLYReader" and ply["points"] == surf["points"]
    assert ply["point"]["RGB"]["components"] == 3
    assert close(ply["bounds"], surf["bounds"])

    paths = seen2["paths.vtp"]
    assert paths["points"] == 5 and paths["cells"] == 2
    assert {"step", "loss", "run_id"} <= set(paths["point"])
    assert paths["point"]["step"]["range"] == [0.0, 20.0]

    cp = seen2["critical_points.vtp"]
    assert cp["points"] == len(summary.persistent)
    assert {"CriticalType", "Persistence", "PairIdentifier", "loss"} <= set(cp["point"])
    types = summary.persistent.type
    assert cp["point"]["CriticalType"]["range"] == [float(types.min()), float(types.max())]
    assert close(
        cp["point"]["loss"]["range"],
        [summary.persistent.value.min(), summary.persistent.value.max()],
    )

    arcs = seen2["merge_tree.vtp"]
    assert arcs["cells"] == int(np.isfinite(summary.join_pairs[:, 1]).sum())
    dgm = seen2["persistence_diagram.vtp"]
    assert {"Birth", "Death", "CriticalType"} <= set(dgm["point"])
    assert {"PairIdentifier", "PairType", "Persistence", "IsFinite"} <= set(dgm["cell"])

    vtm = seen2["landscape.vtm"]
    assert vtm["blocks"] == [
        "field",
        "surface",
        "paths",
        "critical_points",
        "merge_tree",
        "persistence_diagram",
    ]
    assert vtm["block_points"][0] == field.values.size

    one = read_in_paraview(tmp_path, [p for p in files1 if p.suffix != ".py"])
    assert one["field.vti"]["points"] == 51 and close(
        one["field.vti"]["bounds"], [-1, 1, 0, 0, 0, 0]
    )
    three = read_in_paraview(tmp_path, [p for p in files3 if p.suffix != ".py"])
    assert three["field.vti"]["points"] == 9 * 7 * 5
    assert close(three["field.vti"]["bounds"], [0, 1, -1, 1, 2, 3])
    assert close(three["field.vti"]["point"]["loss"]["range"], [f3.values.min(), f3.values.max()])


@needs_pvpython
@pytest.mark.parametrize("ndim", [2, 3])
def test_open_in_paraview_script_renders_a_screenshot(tmp_path, ndim):
    topology = pytest.importorskip("losstopo.topology")
    if ndim == 2:
        field = well_2d()
    else:
        g = Grid.square(11, 1.0, 3)
        mesh = np.meshgrid(*g.axes.values(), indexing="ij")
        field = LossField(sum(m**2 for m in mesh), g)
    files = write_paraview(field, tmp_path, topology=topology.analyze(field, min_persistence=0.05))
    script = files[-1]
    assert script.name == "open_in_paraview.py"
    shot = tmp_path / "elsewhere" / "view.png"
    shot.parent.mkdir()
    proc = run_pvpython(
        [str(script), "--screenshot", str(shot), "--size", "640", "480"], display=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG"
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[:2] == (480, 640)
    # something was drawn: many distinct colours, not just the background
    assert len(np.unique(img.reshape(-1, img.shape[2])[:, :3].round(2), axis=0)) > 50


def test_script_is_plain_python():
    """The generated script compiles (here, without ParaView) and names only existing blocks."""
    import tempfile

    g = Grid.square(5, 1.0, 2)
    with tempfile.TemporaryDirectory() as d:
        files = write_paraview(LossField(np.arange(25.0).reshape(5, 5), g), d)
        text = files[-1].read_text()
    compile(text, "open_in_paraview.py", "exec")
    assert 'BLOCKS = ["field", "surface"]' in text


SIZES = r"""
import json, runpy, sys
from paraview.simple import FindSource, GetActiveViewOrCreate
ns = runpy.run_path(sys.argv[1], run_name="probe")  # the script's functions, without main()
ns["build"](GetActiveViewOrCreate("RenderView"))
b = FindSource("surface").GetDataInformation().GetBounds()
print("JSON" + json.dumps({"bounds": list(b), "glyph": FindSource("critical points").ScaleFactor,
                           "tube": FindSource("path tubes").Radius}))
"""


@needs_pvpython
def test_default_view_sizes_glyphs_by_the_surface_not_the_diagram(tmp_path):
    """Tubes and spheres follow the drawn surface, even when the loss (and with it the
    persistence diagram's block, laid out in loss units) is thousands of times larger."""
    topology = pytest.importorskip("losstopo.topology")
    base = well_2d()
    field = LossField(base.values * 1e4 + 5e3, base.grid, paths=base.paths)
    files = write_paraview(field, tmp_path, topology=topology.analyze(field, min_persistence=1.0))
    probe = tmp_path / "probe.py"
    probe.write_text(SIZES)
    proc = run_pvpython([str(probe), str(files[-1])], display=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("JSON"))[4:])
    b = out["bounds"]
    diag = ((b[1] - b[0]) ** 2 + (b[3] - b[2]) ** 2 + (b[5] - b[4]) ** 2) ** 0.5
    assert out["glyph"] == pytest.approx(0.018 * diag, rel=1e-6)
    assert out["tube"] == pytest.approx(0.004 * diag, rel=1e-6)
