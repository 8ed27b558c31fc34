"""benchmarks/reproduce_skip_connections.py (Li et al.'s skip connections, small) and its page."""

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "reproduce_skip_connections.py"
NAMES = ("ResMLP-4", "ResMLP-4-noskip", "ResMLP-6", "ResMLP-6-noskip")


def load_script():
    spec = importlib.util.spec_from_file_location("reproduce_skip_connections", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One ``--quick`` run end to end into a temporary folder."""
    script = load_script()
    out = tmp_path_factory.mktemp("findings") / "findings.md"
    assert script.main(["--quick", "--out", str(out), "--threads", "1"]) == 0
    return script, out


def table_rows(text):
    return {
        cells[0]: cells[1:]
        for line in text.splitlines()
        if line.startswith("| ResMLP")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }


def test_quick_run_writes_a_consistent_page(quick):
    script, out = quick
    text = out.read_text()
    assert "--quick" in text and "wall time" in text and "thread(s)" in text
    run = json.loads((out.parent / "img" / "skip_results_quick.json").read_text())
    assert [r["name"] for r in run["records"]] == list(NAMES)
    rows = table_rows(text)
    assert list(rows) == list(NAMES)
    for r in run["records"]:
        numbers = [v for k, v in r.items() if isinstance(v, float)]
        assert all(math.isfinite(v) for v in numbers), r
        assert r["n_minima"] >= 1 and r["n_separations"] == r["n_minima"] - 1
        assert 0 <= r["n_confirmed"] <= r["n_separations"]
        assert 0 <= r["n_full_space_minima"] <= r["n_minima"]
        assert 0 <= r["ratio_mean"] <= r["ratio_max"]
        assert r["epochs"] == 2 and r["depth"] == int(r["name"].split("-")[1])
        row = rows[r["name"]]
        assert int(row[5]) == r["n_minima"]
        assert float(row[6]) == pytest.approx(r["total_persistence"], rel=1e-3, abs=1e-12)
        assert row[7] == f"{r['n_separations']} ({r['n_confirmed']})"
        assert float(row[9]) == pytest.approx(r["ratio_mean"], abs=1e-3)
        assert float(row[10]) == pytest.approx(r["ratio_max"], abs=1e-3)
    for image in re.findall(r"\]\(([^)]+\.png)\)", text):
        data = (out.parent / image).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 400_000
    assert len(re.findall(r"\]\(([^)]+\.png)\)", text)) == 2


def test_render_only_rewrites_the_same_page(quick):
    script, out = quick
    before = out.read_text()
    out.write_text("")
    assert script.main(["--quick", "--out", str(out), "--render-only"]) == 0
    assert out.read_text() == before


def test_verdicts_follow_the_numbers():
    script = load_script()

    def records(noskip_minima):
        out = []
        for depth, m in zip((4, 10), noskip_minima, strict=True):
            base = {"depth": depth, "total_persistence": 0.0, "n_confirmed": 0}
            out.append({**base, "skip": True, "n_minima": 1, "ratio_mean": 0.1})
            out.append({**base, "skip": False, "n_minima": m, "ratio_mean": 0.1})
        return out

    holds = script.verdicts(records((1, 6)), (4, 10))
    assert "Li et al.'s direction" in holds[0] and "+5 (depth 10)" in holds[0]
    assert "No difference at any depth" in holds[3]  # the ratio is the same everywhere
    fails = script.verdicts(records((3, 1)), (4, 10))
    assert "does not show the finding" in fails[0]


def test_the_published_page_is_a_full_run():
    page = ROOT / "docs" / "findings.md"
    text = page.read_text()
    assert "--quick" not in text.split("\n\n")[1] and "wall time" in text
    assert "## Reading" in text and len(table_rows(text)) >= 6
    images = re.findall(r"\]\(([^)]+\.png)\)", text)
    assert images and all((page.parent / image).is_file() for image in images)
