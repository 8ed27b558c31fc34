"""Start-up: `losstopo --help`, argument errors and `import losstopo` load no heavy modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "scipy.optimize", "numba", "gudhi", "matplotlib", "sklearn", "h5py")

PROBE = """
import contextlib, io, json, sys
from losstopo.cli import main
argv = json.loads(sys.argv[1])
out, err = io.StringIO(), io.StringIO()
try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
except SystemExit as exc:
    rc = exc.code
print(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue(),
                  "modules": sorted(sys.modules)}))
"""


def _run(argv: list[str], cwd) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True, cwd=cwd
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_help_imports_nothing_heavy(tmp_path):
    res = _run(["--help"], tmp_path)
    assert res["rc"] == 0 and "landscape" in res["out"]
    assert not [m for m in (*HEAVY, "numpy") if m in res["modules"]]


@pytest.mark.parametrize(
    "argv",
    [
        ["landscape", "--model", "mlp", "--resolution", "1", "--out", "f.h5"],
        ["landscape", "--bogus"],
        ["report", "no-such-dir"],
        ["demo", "--out", "no-such-parent/out"],
        ["compare-projectors", "--projectors", "nope", "--out", "cmp"],
    ],
)
def test_argument_errors_import_no_heavy_extras(argv, tmp_path):
    res = _run(argv, tmp_path)
    assert res["rc"] == 2 and "Traceback" not in res["err"]
    assert not [m for m in HEAVY if m in res["modules"]], res["err"]


def test_import_losstopo_is_light_and_exports_resolve():
    code = (
        "import sys, losstopo\n"
        f"light = not any(m in sys.modules for m in {HEAVY!r})\n"
        "from losstopo import evaluate, fidelity, Grid, train\n"
        "import losstopo.evaluate, losstopo.fidelity\n"
        "from losstopo.evaluate import as_decoder\n"
        "ok = losstopo.evaluate is evaluate and callable(losstopo.fidelity) and callable(as_decoder)\n"
        "names = all(getattr(losstopo, n) is not None for n in losstopo.__all__)\n"
        "print(light, ok, names, losstopo.plot.__name__, set(losstopo.__all__) <= set(dir(losstopo)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "True", "losstopo.plot", "True"]
    bad = subprocess.run(
        [sys.executable, "-c", "import losstopo; losstopo.no_such_name"],
        capture_output=True,
        text=True,
    )
    assert "AttributeError" in bad.stderr and "no_such_name" in bad.stderr
