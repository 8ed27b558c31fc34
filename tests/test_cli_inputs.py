"""`losstopo landscape` with a user's own model: the untrained note and the regression refusal."""

from __future__ import annotations

import pytest

from losstopo.cli import main

REGRESSION = (
    "import torch\n"
    "def model():\n    torch.manual_seed(0)\n    return torch.nn.Linear(3, 1)\n"
    "def data():\n    g = torch.Generator().manual_seed(0)\n"
    "    x = torch.randn(12, 3, generator=g)\n    return x, x.sum(1, keepdim=True)\n"
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "newcomer_regression.py").write_text(REGRESSION)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_user_model_without_checkpoint_gets_the_untrained_note(user_module, capsys):
    argv = [
        "landscape",
        "--model",
        "newcomer_regression:model",
        "--data",
        "newcomer_regression:data",
        "--loss",
        "mse",
        "--resolution",
        "3",
        "--out",
        "f.h5",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "note:" in err and "newcomer_regression:model" in err and "--checkpoint" in err


def test_single_output_model_with_default_loss_is_refused(user_module, capsys):
    argv = [
        "landscape",
        "--model",
        "newcomer_regression:model",
        "--data",
        "newcomer_regression:data",
        "--resolution",
        "3",
        "--out",
        "f.h5",
        "--quiet",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--loss mse" in err and "Traceback" not in err
    assert len([line for line in err.strip().splitlines() if line]) == 1
    assert not (user_module / "f.h5").exists()


def test_a_built_in_model_that_does_not_fit_the_data_is_refused_before_training(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = ["landscape", "--model", "mlp", "--data", "synthetic", "--resolution", "3"]
    assert main([*args, "--out", "f.h5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fails on the training data before the first step" in err
    assert "Traceback" not in err and not (tmp_path / "f.h5").exists()
