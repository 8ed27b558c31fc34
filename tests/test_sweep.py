"""`losstopo sweep`: two built-in MLPs, a missing checkpoint, resuming, and bad sweep files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from losstopo import LossField, compare
from losstopo.cli import main
from losstopo.cli.sweep_config import parse_sweep
from losstopo.errors import InvalidParameterError
from losstopo.io.hdf5 import read_fingerprint, write_store

SWEEP = """\
out = "res"
[defaults]
resolution = 5
epochs = 1
deterministic = true
[[entry]]
label = "mlp-a"
model = "mlp"
seed = 0
[[entry]]
label = "mlp-b"
model = "mlp"
seed = 1
[[entry]]
label = "lost"
model = "mlp"
checkpoint = "ckpt/missing.pt"
[verify]
steps = 4
n_points = 5
[hessian]
trace_samples = 3
"""


@pytest.mark.slow
def test_sweep_runs_reports_the_missing_checkpoint_and_resumes(tmp_path, monkeypatch, capsys):
    (tmp_path / "sweep.toml").write_text(SWEEP)
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "sweep.toml", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 entries failed" in err and "lost: the checkpoint" in err
    assert "missing.pt does not exist" in err
    res = tmp_path / "res"
    for name in ("comparison.csv", "comparison.md", "landscapes.png", "mlp-a.h5", "mlp-b.json"):
        assert (res / name).is_file(), name
    rows = list(csv.DictReader((res / "comparison.csv").open()))
    assert [r["label"] for r in rows] == ["mlp-a", "mlp-b"]
    fields = [LossField.load(res / f"{label}.h5") for label in ("mlp-a", "mlp-b")]
    direct = compare(fields, ["mlp-a", "mlp-b"])
    for k, row in enumerate(rows):
        assert float(row["n_minima"]) == direct["n_minima"][k]
        assert float(row["smad"]) == pytest.approx(direct["smad"][k])
        assert float(row["hessian_top_eigenvalue"]) > 0  # the Hessian at the trained model
    for f in fields:  # analysed and verified: the check is stored with the topology
        assert f.topology is not None and "topology_check" in f.topology.attrs
    record = json.loads((res / "mlp-b.json").read_text())
    assert record["status"] == "done" and record["hessian_at_centre"]["trace"] > 0

    # a sweep killed while evaluating mlp-b: a partial store and no record; it resumes
    original = fields[1].values.copy()
    done = np.zeros(original.shape, bool)
    done.ravel()[:12] = True
    metrics = {k: np.where(done, v, np.nan) for k, v in fields[1].metrics.items()}
    partial = LossField(
        np.where(done, original, np.nan), fields[1].grid, metrics=metrics, attrs=fields[1].attrs
    )
    write_store(res / "mlp-b.h5", partial, done, read_fingerprint(res / "mlp-b.h5"), complete=False)
    (res / "mlp-b.json").unlink()
    assert main(["sweep", "sweep.toml"]) == 1
    out = capsys.readouterr().out
    assert "[1/3] mlp-a: already done" in out and "[2/3] mlp-b: 1 persistent minima" in out
    resumed = LossField.load(res / "mlp-b.h5")
    np.testing.assert_array_equal(resumed.values, original)
    assert json.loads((res / "mlp-b.json").read_text())["status"] == "done"


def test_sweep_file_mistakes_exit_2_naming_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[entry]]\nmodel = "mlp"\nresoluton = 5\n')
    assert main(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Unknown key 'resoluton' in [[entry]] 1 of" in err
    assert "valid keys are allow_pickle, bn, checkpoint, data" in err and "resolution" in err
    bad.write_text('colour = "red"\n[[entry]]\nmodel = "mlp"\n')
    assert main(["sweep", str(bad)]) == 2
    assert "Unknown key 'colour' at the top of" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "none.toml")]) == 2
    assert "No sweep file at" in capsys.readouterr().err
    bad.write_text('[[entry]]\nmodel = "mlp"\nlabel = "a"\n')
    assert main(["sweep", str(bad), "--only", "b"]) == 2
    assert "--only names 'b', which" in capsys.readouterr().err
    bad.write_text("[[entry]\n")
    assert main(["sweep", str(bad)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "has no \\[\\[entry\\]\\] tables"),
        ({"entry": [{"seed": 1}]}, "has no model"),
        ({"entry": [{"model": "mlp", "label": "a"}, {"model": "cnn", "label": "a"}]},
         "Two entries of s.toml have the label 'a'"),
        ({"entry": [{"model": "mlp", "label": "a/b"}]}, "cannot name a file"),
        ({"entry": [{"model": "mlp", "resolution": "many"}]}, "resolution of entry .* must be a int"),
        ({"entry": [{"model": "mlp", "normalization": "sideways"}]}, "must be one of filter"),
        ({"entry": [{"model": "mlp"}], "topology": {"threshold": 1}},
         "Unknown key 'threshold' in \\[topology\\] .* valid keys are connectivity, "
         "min_persistence, relative"),
        ({"entry": [{"model": "mlp"}], "compare": {"scale": "cubic"}}, "must be one of auto"),
    ],
)  # fmt: skip
def test_sweep_file_checks(doc, message):
    with pytest.raises(InvalidParameterError, match=message):
        parse_sweep(doc, "s.toml")


def test_sweep_file_builds_landscape_argv(tmp_path):
    cfg = parse_sweep(
        {
            "out": "o",
            "defaults": {"resolution": 9, "data": "digits", "extent": 2},
            "entry": [{"model": "mlp", "checkpoint": "c.pt", "n_components": 1, "extent": 0.5}],
        },
        tmp_path / "s.toml",
    )
    (entry,) = cfg.entries
    assert entry.argv == [
        "landscape", "--resolution", "9", "--data", "digits", "--extent", "0.5", "--model", "mlp",
        "--checkpoint", str(tmp_path / "c.pt"), "--n-components", "1",
    ]  # fmt: skip
    assert cfg.out == tmp_path / "o" and entry.label == "mlp-1"
