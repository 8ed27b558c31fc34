"""Atomic replacement of outputs (losstopo.io.replace): full disks, modes, no clobbering."""

import errno
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from losstopo import Grid, LossField
from losstopo.cli import main
from losstopo.errors import InvalidParameterError, OutputWriteError
from losstopo.io import replace as replace_module
from losstopo.io.replace import file_kind, refuse_clobbering, write_replacing


def field(n=5):
    return LossField(np.arange(float(n * n)).reshape(n, n), Grid.square(n))


def test_a_full_disk_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f.h5"
    field().save(path)
    before = path.read_bytes()
    real_open = open

    def full_disk_open(file, mode="r", *args, **kw):
        handle = real_open(file, mode, *args, **kw)
        if "w" in mode and str(file).endswith(".tmp"):

            class Full:
                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    handle.close()

                def write(self, data):
                    raise OSError(errno.ENOSPC, "No space left on device")

            return Full()
        return handle

    monkeypatch.setattr("builtins.open", full_disk_open)
    with pytest.raises(OutputWriteError, match="the disk is full; the previous version"):
        field(6).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5"]


def test_a_real_write_limit_during_a_landscape_flush_is_one_sentence(tmp_path):
    """``RLIMIT_FSIZE`` makes every write past 20 kB fail as a full disk would (no root needed)."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from losstopo.cli import main
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        sys.exit(main(["landscape", "--model", "mlp", "--epochs", "1", "--resolution", "30",
                       "--quiet", "--out", {str(tmp_path / "big.h5")!r}]))
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [
        f"losstopo landscape: error: Could not write {tmp_path / 'big.h5'}: File too large; the "
        "previous version (if any) is kept unchanged. Free some space or choose another "
        "location, then rerun."
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_export_on_a_full_disk_leaves_no_truncated_vti(tmp_path, monkeypatch):
    from losstopo.export import write_paraview

    out = tmp_path / "out"
    out.mkdir()
    import losstopo.export._common as common

    real = common.write_replacing

    def half_then_fail(path, write, **kw):
        def partial(tmp):
            write(tmp)
            raise OSError(errno.ENOSPC, "No space left on device")

        return real(path, partial, **kw)

    monkeypatch.setattr(common, "write_replacing", half_then_fail)
    with pytest.raises(OutputWriteError, match="the disk is full"):
        write_paraview(field(), out)
    assert [p.name for p in out.iterdir() if p.suffix in (".vti", ".tmp")] == []


def test_new_files_follow_the_umask_and_rewrites_keep_their_mode(tmp_path):
    old = os.umask(0o027)
    try:
        field().save(tmp_path / "a.h5")
        assert stat.S_IMODE((tmp_path / "a.h5").stat().st_mode) == 0o640
    finally:
        os.umask(old)
    os.chmod(tmp_path / "a.h5", 0o664)
    field(6).save(tmp_path / "a.h5")
    assert stat.S_IMODE((tmp_path / "a.h5").stat().st_mode) == 0o664
    write_replacing(tmp_path / "t.txt", lambda tmp: tmp.write_text("x"))
    assert stat.S_IMODE((tmp_path / "t.txt").stat().st_mode) == replace_module.new_file_mode()


def test_file_kinds_and_refusals(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "e.txt").write_text("")
    field().save(tmp_path / "f.h5")
    assert file_kind(tmp_path / "a.json") == "json" and file_kind(tmp_path / "e.txt") is None
    assert file_kind(tmp_path / "f.h5") == "hdf5"
    refuse_clobbering(tmp_path / "a.json", "json", "--json")  # the same kind may be replaced
    with pytest.raises(InvalidParameterError, match="holds hdf5 data, not json"):
        refuse_clobbering(tmp_path / "f.h5", "json", "--json")


def test_topology_json_onto_its_own_input_is_refused(tmp_path, capsys):
    path = tmp_path / "f.h5"
    field().save(path)
    before = path.read_bytes()
    assert main(["topology", str(path), "--json", str(path), "--save"]) == 2
    err = capsys.readouterr().err
    assert "is also the input file" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before
    os.symlink(path, tmp_path / "link.h5")  # the same file under another name
    assert main(["topology", str(path), "--json", str(tmp_path / "link.h5")]) == 2
    assert path.read_bytes() == before


def test_report_onto_a_field_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    field().save(run / "x.h5")
    before = (run / "x.h5").read_bytes()
    assert main(["report", str(run), "--out", str(run / "x.h5")]) == 2
    assert "holds hdf5 data, not html" in capsys.readouterr().err
    assert (run / "x.h5").read_bytes() == before
