"""``--workers N``: local workers that fail together, with real processes and short timeouts."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from losstopo import LossField
from losstopo.cli.workers import failure_sentence, wait_failing_together

WMOD = """
import os, time
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        time.sleep(float(os.environ.get("WMOD_DELAY", "0")))
        failing = os.environ.get("WMOD_FAIL_RANK") == os.environ.get("RANK", "single")
        if failing and self.calls > int(os.environ.get("WMOD_FAIL_AFTER", "5")):
            raise RuntimeError("rank trouble")
        return self.lin(x)

def model():
    return Net()

def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(10, 4, generator=g), torch.randint(0, 2, (10,), generator=g)
"""

LANDSCAPE = ["landscape", "--model", "wmod:model", "--data", "wmod:data"]


@pytest.fixture
def wdir(tmp_path):
    (tmp_path / "wmod.py").write_text(WMOD)
    return tmp_path


def launch(wdir, *args, env=None, **kw):
    full_env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(sys.path), TMPDIR=str(wdir), **(env or {})
    )
    return subprocess.Popen(
        [sys.executable, "-m", "losstopo.cli", *args],
        cwd=wdir,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def workers_of(pid):
    """Processes whose environment names ``pid`` as their launcher."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"LOSSTOPO_PARENT_PID={pid}".encode() in environ:
                found.append(int(entry.name))
    return found


def test_first_failure_ends_the_others_after_a_grace_period():
    procs = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
        subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(2)"]),
    ]
    t0 = time.monotonic()
    assert wait_failing_together(procs, grace=0.5) == (1, 2)
    assert time.monotonic() - t0 < 20
    assert procs[0].returncode == -signal.SIGTERM


def test_failure_sentence_of_a_killed_worker(tmp_path):
    log = tmp_path / "rank1.err"
    log.write_text("some warning\n")
    text = failure_sentence(["landscape"], 1, -9, log)
    assert text.startswith("losstopo landscape: error: worker rank 1 was killed by signal 9")
    log.write_text("losstopo landscape: error: The model raised at grid point 3.\n")
    assert failure_sentence(["landscape"], 1, 2, log).endswith("grid point 3.")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_launcher_leaves_no_worker_and_no_temporary_files(wdir, sig):
    out = wdir / "run.h5"
    launcher = launch(
        wdir,
        *LANDSCAPE,
        "--resolution",
        "20",
        "--workers",
        "2",
        "--quiet",
        "--out",
        str(out),
        env={"WMOD_DELAY": "0.05"},
    )
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert out.exists(), launcher.communicate()
    assert len(workers_of(launcher.pid)) == 2
    launcher.send_signal(sig)
    launcher.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while workers_of(launcher.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers_of(launcher.pid) == []
    leftovers = [
        p.name
        for p in wdir.iterdir()
        if p.name not in {"wmod.py", "run.h5", "run.h5.lock", "__pycache__"}
    ]
    assert leftovers == []  # the launcher's checkpoint and logs (in TMPDIR) are gone
    from losstopo.io import read_progress

    done, total, complete = read_progress(out)
    assert not complete and done < total


@pytest.mark.slow
def test_a_rank_that_raises_stops_every_rank_with_one_sentence(wdir):
    t0 = time.monotonic()
    proc = launch(
        wdir,
        *LANDSCAPE,
        "--resolution",
        "6",
        "--workers",
        "2",
        "--quiet",
        "--out",
        "f.h5",
        env={"WMOD_FAIL_RANK": "1"},
    )
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "rank trouble" in lines[0] and "Traceback" not in err, err
    assert lines[0].startswith("losstopo landscape: error: The model raised at grid point")
    assert time.monotonic() - t0 < 200


@pytest.mark.slow
def test_more_workers_than_points_and_a_refused_out(wdir):
    args = [*LANDSCAPE, "--resolution", "4", "--n-components", "1", "--quiet"]
    single = launch(wdir, *args, "--out", "s.h5")
    assert single.wait(timeout=120) == 0
    s = LossField.load(wdir / "s.h5")
    # a resume with more workers (5) than points, and fewer missing points (2) than workers
    failing = launch(
        wdir, *args, "--out", "p.h5", env={"WMOD_FAIL_RANK": "single", "WMOD_FAIL_AFTER": "3"}
    )
    assert failing.wait(timeout=120) == 2
    proc = launch(wdir, *args, "--workers", "5", "--out", "p.h5")
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    w = LossField.load(wdir / "p.h5")
    np.testing.assert_array_equal(w.values, s.values)
    assert w.attrs["world_size"] == 5 and w.attrs["checkpoint"] is None
    # a refused --out: said at once, before any worker starts, and the file is kept
    (wdir / "text.h5").write_text("not a field")
    t0 = time.monotonic()
    proc = launch(wdir, *args, "--workers", "3", "--out", "text.h5")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "not a readable HDF5 file" in err and "Traceback" not in err
    assert time.monotonic() - t0 < 100 and (wdir / "text.h5").read_text() == "not a field"
