import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from losstopo import Grid, LossField, PlaneProjector, evaluate, random_directions
from losstopo.errors import EvaluationError, FieldFormatError, StoreMismatchError
from losstopo.io import read_progress
from losstopo.store import store_progress

SLOW_MODULE = textwrap.dedent(
    """
    import time
    import torch

    class SlowNet(torch.nn.Module):
        def __init__(self, delay=0.0):
            super().__init__()
            torch.manual_seed(0)
            self.lin = torch.nn.Linear(6, 3)
            self.delay = delay

        def forward(self, x):
            if self.delay:
                time.sleep(self.delay)
            return self.lin(x)

    def data():
        g = torch.Generator().manual_seed(1)
        return torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)

    def run(store, delay=0.0, chunk_size=4):
        from losstopo import Grid, PlaneProjector, evaluate, random_directions
        model = SlowNet(delay)
        proj = PlaneProjector(model, random_directions(model, seed=0, ignore=None))
        return evaluate(model, data(), "cross_entropy", proj, Grid.square(resolution=9),
                        store=store, chunk_size=chunk_size, progress=False, mode="sequential")
    """
)


@pytest.fixture
def slow_module(tmp_path, monkeypatch):
    (tmp_path / "slownet.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import slownet

    return importlib.reload(slownet)


def test_kill9_then_resume_is_bitwise_equal(tmp_path, slow_module):
    store = tmp_path / "run.h5"
    script = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import slownet; slownet.run({str(store)!r}, delay=0.01)"
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    done = 0
    while time.time() < deadline:
        if store.exists():
            try:
                done, total, complete = read_progress(store)
            except FieldFormatError:
                pass  # file being replaced right now is impossible (rename is atomic), but be lenient
            if done >= 20:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done, total, complete = read_progress(store)
    assert 20 <= done < total and not complete
    with pytest.raises(FieldFormatError, match="partial run"):
        LossField.load(store)
    resumed = slow_module.run(store)
    fresh = slow_module.run(None)
    np.testing.assert_array_equal(resumed.values, fresh.values)
    np.testing.assert_array_equal(resumed.metrics["accuracy"], fresh.metrics["accuracy"])
    assert read_progress(store)[2]
    np.testing.assert_array_equal(LossField.load(store).values, fresh.values)
    assert LossField.load(store).equals(resumed)


def test_store_progress_is_read_progress():
    assert store_progress is read_progress


def test_resume_computes_only_missing_points(tmp_path, slow_module, monkeypatch):
    store = tmp_path / "run.h5"

    class Flaky(slow_module.SlowNet):
        calls = 0
        failed = False

        def forward(self, x):
            Flaky.calls += 1
            if Flaky.calls == 30 and not Flaky.failed:
                Flaky.failed = True
                raise RuntimeError("transient failure")
            return super().forward(x)

    model = Flaky()
    proj = PlaneProjector(model, random_directions(model, seed=0, ignore=None))
    grid = Grid.square(resolution=9)
    kwargs = dict(store=store, chunk_size=4, progress=False, mode="sequential", batch_size=40)
    with pytest.raises(EvaluationError, match="saved in"):
        evaluate(model, slow_module.data(), "cross_entropy", proj, grid, **kwargs)
    done_before = read_progress(store)[0]
    assert done_before >= 24
    Flaky.calls = 0
    field = evaluate(model, slow_module.data(), "cross_entropy", proj, grid, **kwargs)
    assert Flaky.calls == 1 + (81 - done_before)  # one centre check, then only the missing points
    np.testing.assert_array_equal(field.values, slow_module.run(None).values)
    # a finished store is returned as is
    Flaky.calls = 0
    evaluate(model, slow_module.data(), "cross_entropy", proj, grid, **kwargs)
    assert Flaky.calls == 0


def test_resume_with_other_arguments_refused(tmp_path, slow_module):
    store = tmp_path / "run.h5"
    slow_module.run(store)
    before = store.read_bytes()
    model = slow_module.SlowNet()
    x, y = slow_module.data()
    other_dirs = PlaneProjector(model, random_directions(model, seed=1, ignore=None))
    same_dirs = PlaneProjector(model, random_directions(model, seed=0, ignore=None))
    with pytest.raises(StoreMismatchError, match="projector"):
        evaluate(
            model, (x, y), "cross_entropy", other_dirs, Grid.square(9), store=store, progress=False
        )
    with pytest.raises(StoreMismatchError, match="grid"):
        evaluate(
            model, (x, y), "cross_entropy", same_dirs, Grid.square(7), store=store, progress=False
        )
    with pytest.raises(StoreMismatchError, match="data"):
        evaluate(
            model,
            (x[:30], y[:30]),
            "cross_entropy",
            same_dirs,
            Grid.square(9),
            store=store,
            progress=False,
        )
    assert store.read_bytes() == before


def test_store_never_overwrites_foreign_file(tmp_path, slow_module):
    path = tmp_path / "other.h5"
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(FieldFormatError):
        slow_module.run(path)
    assert path.read_bytes() == b"not hdf5 at all"
    plain = tmp_path / "plain.h5"
    LossField(np.zeros((9, 9)), Grid.square(9)).save(plain)
    with pytest.raises(StoreMismatchError, match="never overwritten"):
        slow_module.run(plain)


@pytest.mark.slow
def test_two_process_sharding_equals_single(tmp_path, slow_module):
    """Two gloo ranks (as torchrun would start them) give the single-process field."""
    port = 29500 + os.getpid() % 1000
    script = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import slownet, numpy as np
        field = slownet.run({str(tmp_path / "sharded.h5")!r}, chunk_size=3)
        import os
        np.save({str(tmp_path)!r} + f"/rank{{os.environ['RANK']}}.npy", field.values)
        """
    )
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            LOSSTOPO_BACKEND="gloo",
        )
        procs.append(subprocess.Popen([sys.executable, "-c", script], env=env))
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    single = slow_module.run(None)
    for rank in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"rank{rank}.npy"), single.values)
    stored = LossField.load(tmp_path / "sharded.h5")
    np.testing.assert_array_equal(stored.values, single.values)
    assert stored.attrs["world_size"] == 2


def test_points_before_a_failure_inside_a_chunk_are_saved_right(tmp_path, slow_module):
    """The points of a chunk computed before the model raised keep their true values."""
    store = tmp_path / "run.h5"

    class FailsOnce(slow_module.SlowNet):
        calls = 0

        def forward(self, x):
            FailsOnce.calls += 1
            if FailsOnce.calls == 7:  # the centre check, then points 0..4, then point 5 fails
                raise RuntimeError("once")
            return super().forward(x)

    model = FailsOnce()
    proj = PlaneProjector(model, random_directions(model, seed=0, ignore=None))
    kwargs = dict(store=store, chunk_size=16, progress=False, mode="sequential", batch_size=40)
    with pytest.raises(EvaluationError, match="grid point 5 "):
        evaluate(model, slow_module.data(), "cross_entropy", proj, Grid.square(9), **kwargs)
    from losstopo.io import read_partial

    partial = read_partial(store)
    assert partial.done.sum() == 5
    fresh = slow_module.run(None).values.ravel()
    np.testing.assert_array_equal(partial.values[partial.done], fresh[:5])


def test_deterministic_runs_are_bitwise_equal_and_record_their_strategy(slow_module):
    a, b = (
        evaluate(
            slow_module.SlowNet(),
            slow_module.data(),
            "cross_entropy",
            PlaneProjector(slow_module.SlowNet(), random_directions(slow_module.SlowNet(), seed=0)),
            Grid.square(9),
            progress=False,
            deterministic=True,
        )
        for _ in range(2)
    )
    assert np.array_equal(a.values, b.values) and a.attrs["deterministic"] is True
    strategy = a.attrs["strategy"]
    assert strategy["batch_size"] == 40 and strategy["mode"] == "sequential"
    assert strategy["first_layer_split"] is False  # a forward of its own: no split


def test_resume_reuses_the_first_segments_strategy(tmp_path, slow_module):
    """A run interrupted with one batch size resumes with it, whatever the tuning would pick."""
    store = tmp_path / "run.h5"

    class Interrupted(slow_module.SlowNet):
        calls = 0

        def forward(self, x):
            Interrupted.calls += 1
            if Interrupted.calls == 60:
                raise RuntimeError("interrupted")
            return super().forward(x)

    def run(model, store, **kw):
        proj = PlaneProjector(model, random_directions(model, seed=0, ignore=None))
        return evaluate(
            model,
            slow_module.data(),
            "cross_entropy",
            proj,
            Grid.square(9),
            store=store,
            chunk_size=8,
            progress=False,
            mode="sequential",
            **kw,
        )

    with pytest.raises(EvaluationError):
        run(Interrupted(), store, batch_size=7)  # 6 batches of 7 (and one of 5) per point
    resumed = run(slow_module.SlowNet(), store)  # would measure, and pick one batch of 40
    assert resumed.attrs["strategy"]["batch_size"] == 7
    uninterrupted = run(slow_module.SlowNet(), None, batch_size=7)
    assert np.array_equal(resumed.values, uninterrupted.values)
    assert np.array_equal(resumed.metrics["accuracy"], uninterrupted.metrics["accuracy"])


def test_slow_chunks_are_split_so_the_store_is_written_by_time(tmp_path, slow_module, monkeypatch):
    import losstopo.distributed
    from losstopo.store import PointStore

    monkeypatch.setattr(losstopo.distributed, "FLUSH_SECONDS", 0.05)
    flushes = []
    real_flush = PointStore.flush
    monkeypatch.setattr(
        PointStore,
        "flush",
        lambda self, attrs: (flushes.append(int(self.done.sum())), real_flush(self, attrs)),
    )
    field = slow_module.run(tmp_path / "run.h5", delay=0.01, chunk_size=40)
    assert flushes[0] == 40 and len(flushes) > 5  # 40 points took over 0.05 s: smaller chunks
    np.testing.assert_array_equal(field.values, slow_module.run(None).values)
