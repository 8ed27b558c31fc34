"""`losstopo compare-projectors`."""

import csv

import pytest

from losstopo import cli


def test_compare_projectors_table(tmp_path, capsys):
    out = tmp_path / "fid"
    code = cli.main(
        [
            "compare-projectors",
            "--model",
            "pinn",
            "--epochs",
            "6",
            "--runs",
            "2",
            "--projectors",
            "pca,ae",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "autoencoder" in printed and "holdout_mean_projection_error" in printed
    rows = list(csv.DictReader((out / "fidelity.csv").open()))
    assert [r["projector"] for r in rows] == ["pca", "autoencoder"]
    assert float(rows[1]["mean_projection_error"]) < float(rows[0]["mean_projection_error"])
    assert (out / "fidelity.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--projectors", "pca,tsne"], "Unknown projector 'tsne' in --projectors"),
        (["--components", "4"], r"The 'components' parameter must be an int in the range \[1, 3\]"),
        (["--runs", "0"], "The 'runs' parameter must be an int >= 1"),
        (["--checkpoints", "/nonexistent/folder"], "does not exist"),
        (["--out", "/nonexistent/dir/out"], "does not exist; create it first"),
        (["--epochs", "1"], "too few to hold half of them out"),
    ],
)
def test_user_errors_exit_2_with_one_sentence(args, message, capsys):
    code = cli.main(["compare-projectors", "--model", "pinn", "--epochs", "3", "--quiet", *args])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("losstopo compare-projectors: error:")
    assert "Traceback" not in err
    import re

    assert re.search(message, err)


def test_checkpoint_folders(tmp_path, capsys):
    import torch

    from losstopo.models import PINNMLP

    folder = tmp_path / "runA"
    folder.mkdir()
    torch.manual_seed(0)
    model = PINNMLP(1, (32, 32, 32), 1)
    for step in range(8):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
        torch.save(model.state_dict(), folder / f"ckpt_{step}.pt")
    code = cli.main(
        [
            "compare-projectors",
            "--model",
            "pinn",
            "--checkpoints",
            str(folder),
            "--projectors",
            "pca",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    assert code == 0
    assert "pca" in capsys.readouterr().out
