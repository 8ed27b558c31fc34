import subprocess
import sys

import numpy as np
import pytest
import torch

from losstopo import LossField
from losstopo.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "losstopo.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_landscape_and_info(tmp_path, capsys):
    out = tmp_path / "f.h5"
    assert (
        main(
            [
                "landscape",
                "--model",
                "mlp",
                "--resolution",
                "5",
                "--epochs",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    field = LossField.load(out)
    assert field.values.shape == (5, 5)
    assert field.attrs["normalization"] == "filter" and field.attrs["seed"] == 0
    assert main(["info", str(out)]) == 0
    assert "Grid(x=[-1..1]x5" in capsys.readouterr().out


def test_builtin_training_is_deterministic(tmp_path):
    args = ["landscape", "--model", "mlp", "--resolution", "3", "--epochs", "2", "--quiet"]
    main([*args, "--out", str(tmp_path / "a.h5")])
    main([*args, "--out", str(tmp_path / "b.h5")])
    np.testing.assert_array_equal(
        LossField.load(tmp_path / "a.h5").values, LossField.load(tmp_path / "b.h5").values
    )


def test_module_function_specs(tmp_path):
    (tmp_path / "mymod.py").write_text(
        "import torch\n"
        "def model():\n    torch.manual_seed(0)\n    return torch.nn.Linear(4, 2)\n"
        "def data():\n    g = torch.Generator().manual_seed(0)\n"
        "    return torch.randn(10, 4, generator=g), torch.randint(0, 2, (10,), generator=g)\n"
    )
    r = run_cli(
        "landscape",
        "--model",
        "mymod:model",
        "--data",
        "mymod:data",
        "--resolution",
        "3",
        "--ignore",
        "none",
        "--out",
        "x.h5",
        "--quiet",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert LossField.load(tmp_path / "x.h5").values.shape == (3, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["landscape", "--model", "vgg", "--out", "x.h5"], "Unknown model 'vgg'"),
        (
            ["landscape", "--model", "mlp", "--data", "imagenet", "--out", "x.h5"],
            "Unknown data 'imagenet'",
        ),
        (
            ["landscape", "--model", "nosuchmod:f", "--data", "digits", "--out", "x.h5"],
            "Could not import module 'nosuchmod'",
        ),
        (
            ["landscape", "--model", "mlp", "--resolution", "1", "--out", "x.h5"],
            "'resolution' parameter must be an int >= 2",
        ),
        (["landscape", "--model", "mlp", "--out", "missing/x.h5"], "does not exist"),
        (
            ["landscape", "--model", "mlp", "--checkpoint", "nope.pt", "--out", "x.h5"],
            "Checkpoint nope.pt does not exist",
        ),
        (["landscape", "--model", "resnet20", "--out", "x.h5"], "has no built-in data"),
        (["info", "missing.h5"], "does not exist"),
    ],
)
def test_user_errors_exit_2_without_traceback(tmp_path, args, message):
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_mismatching_checkpoint_names_tensor(tmp_path):
    torch.save(torch.nn.Linear(3, 3).state_dict(), tmp_path / "wrong.pt")
    r = run_cli(
        "landscape", "--model", "mlp", "--checkpoint", "wrong.pt", "--out", "x.h5", cwd=tmp_path
    )
    assert r.returncode == 2 and "no tensor '1.weight'" in r.stderr and "Traceback" not in r.stderr


def test_corrupt_store_refused_and_kept(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"junk")
    r = run_cli(
        "landscape",
        "--model",
        "mlp",
        "--resolution",
        "3",
        "--epochs",
        "1",
        "--out",
        "x.h5",
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "not a readable HDF5 file" in r.stderr
    assert (tmp_path / "x.h5").read_bytes() == b"junk"


def test_info_on_a_damaged_field_file(tmp_path):
    import h5py

    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.attrs["format"] = "losstopo-field"
        f.attrs["format_version"] = 1
    r = run_cli("info", "bad.h5", cwd=tmp_path)
    assert r.returncode == 2 and "no 'values'" in r.stderr and "Traceback" not in r.stderr


def test_help_everywhere():
    commands = ["landscape", "info", "topology", "export", "report", "demo", "compare-projectors"]
    for cmd in ([], *([c] for c in commands)):
        r = run_cli(*cmd, "--help")
        assert r.returncode == 0 and "usage" in r.stdout


@pytest.mark.slow
def test_workers_equal_single_process(tmp_path):
    args = ["landscape", "--model", "mlp", "--resolution", "7", "--epochs", "2", "--quiet"]
    r = run_cli(*args, "--workers", "2", "--out", "w.h5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    main([*args, "--out", str(tmp_path / "s.h5")])
    w, s = LossField.load(tmp_path / "w.h5"), LossField.load(tmp_path / "s.h5")
    np.testing.assert_allclose(w.values, s.values, rtol=1e-6)
    assert w.attrs["world_size"] == 2
