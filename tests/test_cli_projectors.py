"""`losstopo compare-projectors`."""

import csv

import numpy as np
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
        (
            ["--n-components", "4"],
            r"The 'n_components' parameter must be an int in the range \[1, 3\]",
        ),
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


def test_old_components_spelling_still_works(capsys):
    code = cli.main(["compare-projectors", "--components", "4", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "losstopo: --components is deprecated and will be removed; use --n-components.",
        "losstopo compare-projectors: error: The 'n_components' parameter must be an int in the "
        "range [1, 3]. Got 4 instead.",
    ]


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
    # PCA's projection errors by hand: the plane of the top two principal directions through
    # the last fitted checkpoint, relative error |x' - x| / |x|; held out: fitted on every other one
    from losstopo import Trajectory

    X = Trajectory.from_checkpoints(folder, model).points.astype(np.float64)

    def errors(fit, test):
        _, _, vt = np.linalg.svd(fit - fit.mean(axis=0), full_matrices=False)
        basis = vt[:2]
        rec = fit[-1] + (test - fit[-1]) @ basis.T @ basis
        return np.linalg.norm(rec - test, axis=1) / np.linalg.norm(test, axis=1)

    (row,) = list(csv.DictReader((tmp_path / "o" / "fidelity.csv").open()))
    assert float(row["mean_projection_error"]) == pytest.approx(errors(X, X).mean(), rel=1e-3)
    held = errors(X[0::2], X[1::2]).mean()
    assert float(row["holdout_mean_projection_error"]) == pytest.approx(held, rel=1e-3)
