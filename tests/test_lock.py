"""One writer per output file (losstopo.io.lock), checked with real processes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from losstopo import LossField
from losstopo.errors import StoreBusyError
from losstopo.io import read_progress
from losstopo.io.lock import WriterLock, lock_holder, lock_path, writer_lock

RUNNER = textwrap.dedent(
    """
    import sys, time, torch
    from losstopo import Grid, PlaneProjector, evaluate, random_directions

    class Slow(torch.nn.Module):
        def __init__(self, delay):
            super().__init__()
            torch.manual_seed(0)
            self.lin = torch.nn.Linear(6, 3)
            self.delay = delay

        def forward(self, x):
            time.sleep(self.delay)
            return self.lin(x)

    def run(store, seed=0, delay=0.0):
        g = torch.Generator().manual_seed(1)
        data = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
        model = Slow(delay)
        proj = PlaneProjector(model, random_directions(model, seed=seed, ignore=None))
        return evaluate(model, data, "cross_entropy", proj, Grid.square(resolution=9),
                        store=store, chunk_size=4, progress=False, mode="sequential",
                        deterministic=True)

    if __name__ == "__main__":
        run(sys.argv[1], seed=int(sys.argv[2]), delay=float(sys.argv[3]))
    """
)


@pytest.fixture
def runner(tmp_path, monkeypatch):
    (tmp_path / "lockrunner.py").write_text(RUNNER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import lockrunner

    return importlib.reload(lockrunner)


def start(tmp_path, store, seed=0, delay=0.03):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "lockrunner.py"), str(store), str(seed), str(delay)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def partly_done(store):
    try:
        return read_progress(store)[0] >= 8
    except Exception:  # noqa: BLE001 - not written yet
        return False


def test_second_writer_refused_at_once_and_readers_unaffected(tmp_path, runner):
    store = tmp_path / "run.h5"
    first = start(tmp_path, store)
    try:
        assert wait_for(lambda: partly_done(store)), first.stderr
        t0 = time.monotonic()
        with pytest.raises(StoreBusyError, match=rf"pid {first.pid} on .*started"):
            runner.run(store, seed=1)  # another seed: would overwrite the run chunk by chunk
        assert time.monotonic() - t0 < 10
        done, total, complete = read_progress(store)  # a reader during the run
        assert 8 <= done <= total and not complete
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
        first.wait()
    assert not lock_path(store).exists()
    np.testing.assert_array_equal(LossField.load(store).values, runner.run(None).values)


def test_kill9_leaves_no_stale_lock_and_no_temporary_files(tmp_path, runner):
    store = tmp_path / "run.h5"
    first = start(tmp_path, store)
    assert wait_for(lambda: partly_done(store))
    first.send_signal(signal.SIGKILL)
    first.wait()
    # a temporary file as a killed writer leaves it, in the middle of a rename
    (tmp_path / ".run.h5.abcd_123.tmp").write_bytes(b"half a file")
    (tmp_path / ".other.h5.abcd_123.tmp").write_bytes(b"someone else's")
    resumed = runner.run(store)
    np.testing.assert_array_equal(resumed.values, runner.run(None).values)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [
        ".other.h5.abcd_123.tmp"
    ]


def test_lock_is_exclusive_across_processes_and_reentrant_within_one(tmp_path):
    target = tmp_path / "f.h5"
    code = (
        "import sys, time; from losstopo.io.lock import writer_lock\n"
        f"with writer_lock({str(target)!r}):\n    print('held', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        info = lock_holder(target)
        assert info["pid"] == holder.pid and isinstance(info["started"], float)
        with pytest.raises(StoreBusyError, match=f"pid {holder.pid}"):
            WriterLock(target).acquire()
    finally:
        holder.kill()
        holder.wait()
    with writer_lock(target), writer_lock(target):  # the kernel let the killed holder's lock go
        assert json.loads(lock_path(target).read_text())["pid"] == os.getpid()
    assert not lock_path(target).exists()


def test_one_off_writes_refused_while_a_run_writes(tmp_path, runner):
    store = tmp_path / "run.h5"
    first = start(tmp_path, store)
    try:
        assert wait_for(lambda: partly_done(store))
        with pytest.raises(StoreBusyError, match="being written"):
            LossField(np.zeros((2, 2)), runner.Grid.square(2)).save(store)
    finally:
        first.kill()
        first.wait()
