"""`losstopo compare`: the files it writes, their agreement with the Python call, and refusals."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from losstopo import LossField, compare
from losstopo.cli import main
from losstopo.testing import analytic_field

MYMOD = (
    "import torch\n"
    "def model():\n    torch.manual_seed(0)\n"
    "    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))\n"
    "def data():\n    g = torch.Generator().manual_seed(0)\n"
    "    return torch.randn(30, 4, generator=g), torch.randint(0, 3, (30,), generator=g)\n"
)


@pytest.mark.slow
def test_compare_two_landscapes_writes_every_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "mymod.py").write_text(MYMOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    base = ["landscape", "--model", "mymod:model", "--data", "mymod:data", "--resolution", "9"]
    for seed in ("3", "4"):
        assert (
            main([*base, "--extent", "2", "--seed", seed, "--out", f"s{seed}.h5", "--quiet"]) == 0
        )
    verify = ["verify", "s3.h5", "--model", "mymod:model", "--data", "mymod:data", "--steps", "4"]
    assert main(verify) == 0
    capsys.readouterr()
    args = ["compare", "s3.h5", "s4.h5", "--labels", "seed 3", "seed 4", "--out", "cmp"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("| landscape | n_minima |") and "wrote comparison.csv" in out
    names = sorted(p.name for p in (tmp_path / "cmp").iterdir())
    assert names == [
        "comparison.csv", "comparison.html", "comparison.md", "distances.csv", "distances.png",
        "landscapes.png",
    ]  # fmt: skip
    fields = [LossField.load(tmp_path / f) for f in ("s3.h5", "s4.h5")]
    direct = compare(fields, ["seed 3", "seed 4"])
    rows = list(csv.DictReader((tmp_path / "cmp" / "comparison.csv").open()))
    assert [r["label"] for r in rows] == ["seed 3", "seed 4"]
    for k, row in enumerate(rows):
        for col in direct.columns:
            assert float(row[col]) == pytest.approx(direct[col][k], rel=1e-9, nan_ok=True)
    # the verified landscape carries its check: the column is there (and empty for the other)
    assert "verified_fraction" in direct.columns and np.isnan(direct["verified_fraction"][1])
    dist = list(csv.DictReader((tmp_path / "cmp" / "distances.csv").open()))
    assert float(dist[1]["bottleneck"]) == pytest.approx(direct.bottleneck[0, 1])
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert md == direct.to_markdown()
    page = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "seed 4" in page and "data:image/png;base64" in page
    assert main(["report", "cmp"]) == 0
    report = (tmp_path / "cmp" / "report.html").read_text()
    assert "<h2>Comparison</h2>" in report and 'href="comparison.html"' in report


@pytest.fixture
def fields(tmp_path):
    paths = {}
    for name, res in (("bowl", 9), ("double_well", 9), ("bowl3d", 5)):
        paths[name] = tmp_path / f"{name}.h5"
        analytic_field(name, res).save(paths[name])
    return paths


def test_compare_refusals_exit_2_with_one_sentence(fields, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["compare", str(fields["bowl"]), str(fields["bowl3d"]), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "a 2D field, with 'bowl3d', a 3D field" in err and "Traceback" not in err
    assert main(["compare", str(fields["bowl"]), str(fields["double_well"]), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "not comparable: extent [-1, 1]x[-1, 1] vs [-2, 2]x[-1, 1]" in err and "--force" in err
    both = [str(fields["bowl"]), str(fields["double_well"])]
    assert main(["compare", *both, "--labels", "a", "a", "--out", out]) == 2
    assert "Two landscapes have the label 'a'" in capsys.readouterr().err
    assert main(["compare", *both, "--labels", "a", "--out", out]) == 2
    assert "Got 1 --labels for 2 fields" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "nope.h5"), "--out", out]) == 2
    assert "No field file at" in capsys.readouterr().err
    assert main(["compare", *both, "--force", "--scale", "linear", "--out", out, "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    written = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert written == [
        "comparison.csv", "comparison.html", "comparison.md", "distances.csv", "distances.png",
        "landscapes.png",
    ]  # fmt: skip
    expected = compare([str(p) for p in (fields["bowl"], fields["double_well"])], force=True)
    assert (tmp_path / "o" / "comparison.csv").read_text() == expected.to_csv()
