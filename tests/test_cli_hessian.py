"""`losstopo hessian`: the point summary and the curvature map, and one-sentence errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from losstopo import LossField
from losstopo.cli import main

MYMOD = (
    "import torch\n"
    "def model():\n    torch.manual_seed(0)\n"
    "    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))\n"
    "def data():\n    g = torch.Generator().manual_seed(0)\n"
    "    return torch.randn(30, 4, generator=g), torch.randint(0, 3, (30,), generator=g)\n"
)


def test_point_summary_and_density(tmp_path, monkeypatch, capsys):
    (tmp_path / "mymod.py").write_text(MYMOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = ["hessian", "--model", "mymod:model", "--data", "mymod:data", "--out", "h", "--k", "2"]
    args += ["--trace-samples", "10", "--density-steps", "8", "--density-runs", "2"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "h" / "hessian.json").read_text())
    vals = summary["spectrum"]["eigenvalues"]
    assert len(vals) == 4 and vals == sorted(vals, reverse=True)
    assert summary["n_params"] == 4 * 6 + 6 + 6 * 3 + 3
    assert (tmp_path / "h" / "spectral_density.png").stat().st_size > 0
    table = np.loadtxt(tmp_path / "h" / "spectral_density.csv", delimiter=",", skiprows=1)
    assert table.shape[1] == 2
    assert "eigenvalues (both)" in capsys.readouterr().out


def test_curvature_map_is_resumable_field(tmp_path, monkeypatch):
    (tmp_path / "mymod.py").write_text(MYMOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = ["hessian", "--model", "mymod:model", "--data", "mymod:data", "--out", "m", "--map"]
    args += ["--resolution", "3", "--lanczos-steps", "4", "--quiet"]
    assert main(args) == 0
    field = LossField.load(tmp_path / "m" / "curvature_map.h5")
    assert field.values.shape == (3, 3)
    assert set(field.metrics) == {"lambda_max", "lambda_min"}
    assert main(args) == 0  # a finished map is read back, not recomputed
    assert LossField.load(tmp_path / "m" / "curvature_map.h5").equals(field)


def test_bad_k_is_one_sentence(tmp_path, monkeypatch, capsys):
    (tmp_path / "mymod.py").write_text(MYMOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    base = ["hessian", "--model", "mymod:model", "--data", "mymod:data", "--out", "h"]
    assert main([*base, "--k", "0"]) == 2
    err = capsys.readouterr().err
    assert "--k" in err and "Traceback" not in err
    assert main([*base, "--k", "1000", "--trace-samples", "2"]) == 2
    assert "the maximum is k=51" in capsys.readouterr().err


@pytest.mark.slow
def test_curvature_map_with_two_workers_equals_one_process(tmp_path):
    import subprocess
    import sys

    (tmp_path / "mymod.py").write_text(MYMOD)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    base = ["hessian", "--model", "mymod:model", "--data", "mymod:data", "--map"]
    base += ["--resolution", "4", "--lanczos-steps", "4", "--quiet"]
    for out, workers in (("one", "1"), ("two", "2")):
        proc = subprocess.run(
            [sys.executable, "-m", "losstopo.cli", *base, "--out", out, "--workers", workers],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    one = LossField.load(tmp_path / "one" / "curvature_map.h5")
    two = LossField.load(tmp_path / "two" / "curvature_map.h5")
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.metrics["lambda_min"], two.metrics["lambda_min"])
