"""``losstopo connect`` and ``losstopo align``: outputs, and one sentence with exit 2 on bad input."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch

from losstopo.cli.main import main
from losstopo.connectivity import PathProfile
from losstopo.models import MLP


@pytest.fixture
def two_checkpoints(tmp_path):
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path / f"m{seed}.pt"
        torch.save(MLP(64, (128, 128), 10).state_dict(), path)  # the built-in "mlp"
        paths.append(str(path))
    return paths


def test_connect_writes_profiles_plane_and_bundle(two_checkpoints, tmp_path, capsys):
    out = tmp_path / "conn"
    code = main(["connect", *two_checkpoints, "--model", "mlp", "--epochs", "1", "--n-points",
                 "5", "--resolution", "4", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    for name in ("linear.csv", "linear.h5", "bezier.csv", "bezier.h5", "curve.pt", "plane.h5",
                 "barrier.png", "plane_contour.png", "paraview/landscape.vtm",
                 "paraview/profiles.vtp", "paraview/paths.vtp"):  # fmt: skip
        assert (out / name).is_file(), name
    profile = PathProfile.load(out / "linear.h5")
    assert len(profile) == 5 and profile.kind == "linear"


def test_align_saves_an_equivalent_model_and_prints_barriers(two_checkpoints, tmp_path, capsys):
    out = tmp_path / "aligned.pt"
    code = main(["align", *two_checkpoints, "--model", "mlp", "--n-points", "3", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "barrier before:" in printed and "barrier after weights matching:" in printed
    b = MLP(64, (128, 128), 10)
    b.load_state_dict(torch.load(two_checkpoints[1], weights_only=True))
    aligned = copy.deepcopy(b)
    aligned.load_state_dict(torch.load(out, weights_only=True))
    x = torch.rand(7, 64)
    np.testing.assert_allclose(aligned(x).detach(), b(x).detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n-points", "1"], "'n_points' parameter must be an int >= 2"),
        (["--model", "cnn"], "has no tensor|shape|has a tensor"),
        (["--epochs", "0"], "'--epochs' parameter must be an int >= 1"),
    ],
)
def test_connect_bad_input_exits_2_with_one_sentence(two_checkpoints, tmp_path, capsys, extra,
                                                     message):  # fmt: skip
    args = ["connect", *two_checkpoints, "--model", "mlp", "--out", str(tmp_path / "o"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("losstopo connect: error:") and len(err.splitlines()) == 1
    assert re.search(message, err), err


def test_align_refuses_a_checkpoint_that_is_not_a_state_dict(two_checkpoints, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    torch.save([1, 2, 3], bad)
    code = main(["align", two_checkpoints[0], str(bad), "--model", "mlp", "--out",
                 str(tmp_path / "x.pt")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "is not a state_dict" in err and "Traceback" not in err
