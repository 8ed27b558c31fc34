"""Fidelity reports, the comparison table, the PINN task and the acceptance figures (small scale)."""

import csv

import numpy as np
import pytest
import torch

from losstopo import ParameterSpace, Trajectory, train
from losstopo.datasets import digits
from losstopo.errors import InvalidParameterError
from losstopo.fidelity import (
    FidelityReport,
    checkpoint_losses,
    compare_projectors,
    default_projectors,
    fidelity,
)
from losstopo.models import MLP, SmallCNN
from losstopo.pinn import poisson_data, poisson_residual, train_pinn
from losstopo.projectors import AutoEncoderProjector, PCAProjector, PHATEProjector


@pytest.fixture(scope="module")
def small_digits():
    x, y = digits("train")
    return x[:200], y[:200]


@pytest.fixture(scope="module")
def mlp_traj(small_digits):
    torch.manual_seed(0)
    model = MLP(64, (8,), 10)
    traj = train(model, small_digits, epochs=12, lr=0.1, seed=0, progress=False)
    return traj, model


def test_checkpoint_losses_match_the_model_and_leave_it_alone(mlp_traj, small_digits):
    traj, model = mlp_traj
    before = ParameterSpace.from_module(model).flatten(model).clone()
    losses = checkpoint_losses(model, small_digits, "cross_entropy", traj.points[[0, -1]])
    with torch.no_grad():
        direct = torch.nn.functional.cross_entropy(model(small_digits[0]), small_digits[1])
    np.testing.assert_allclose(losses[-1], float(direct), rtol=1e-5)
    assert losses[0] > losses[-1]
    assert torch.equal(ParameterSpace.from_module(model).flatten(model), before)


def test_report_fields_and_holdout(mlp_traj, small_digits):
    traj, model = mlp_traj
    rep = fidelity(PCAProjector(2), traj, model, small_digits, "cross_entropy", holdout=True)
    assert isinstance(rep, FidelityReport) and rep.projector == "PCAProjector"
    n = len(traj)
    for arr in (rep.projection_error, rep.loss_error, rep.relative_loss_error):
        assert arr.shape == (n,) and np.all(arr >= 0)
    assert rep.mean_projection_error == pytest.approx(rep.projection_error.mean())
    assert rep.mean_loss_error == pytest.approx(rep.loss_error.mean())
    assert rep.mean_relative_loss_error == pytest.approx(rep.relative_loss_error.mean())
    np.testing.assert_allclose(rep.relative_loss_error, rep.loss_error / rep.loss)
    assert rep.holdout is not None
    np.testing.assert_array_equal(rep.holdout.indices, np.arange(1, n, 2))
    assert rep.holdout.attrs["n_fitted"] == len(range(0, n, 2))
    assert set(rep.summary()) >= {"mean_projection_error", "holdout_mean_projection_error"}
    # explicit indices / masks; no holdout by default
    assert fidelity(PCAProjector(2), traj, model, small_digits, "cross_entropy").holdout is None
    r2 = fidelity(PCAProjector(2), traj, model, small_digits, "cross_entropy", holdout=[2, 5])
    np.testing.assert_array_equal(r2.holdout.indices, [2, 5])


def test_holdout_errors(mlp_traj, small_digits):
    traj, model = mlp_traj
    with pytest.raises(InvalidParameterError, match="Holdout index 99 is beyond the trajectory"):
        fidelity(PCAProjector(2), traj, model, small_digits, "cross_entropy", holdout=[99])
    with pytest.raises(InvalidParameterError, match="both must be non-empty"):
        fidelity(
            PCAProjector(2),
            traj,
            model,
            small_digits,
            "cross_entropy",
            holdout=np.ones(len(traj), bool),
        )
    with pytest.raises(InvalidParameterError, match="'holdout' parameter"):
        fidelity(PCAProjector(2), traj, model, small_digits, "cross_entropy", holdout="half")


def test_phate_fidelity_names_decoders(mlp_traj, small_digits):
    traj, model = mlp_traj
    with pytest.raises(InvalidParameterError, match="cannot decode"):
        fidelity(PHATEProjector(random_state=0), traj, model, small_digits, "cross_entropy")


def test_compare_projectors_writes_csv_and_chart(mlp_traj, small_digits, tmp_path):
    traj, model = mlp_traj
    ae = AutoEncoderProjector(hidden=(32, 32), max_epochs=400, random_state=0, progress=False)
    table = compare_projectors(
        traj,
        model,
        small_digits,
        "cross_entropy",
        projectors={"pca": PCAProjector(2), "autoencoder": ae},
        csv_path=tmp_path / "f.csv",
        plot_path=tmp_path / "f.png",
    )
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert [r["projector"] for r in rows] == ["pca", "autoencoder"]
    assert "holdout_mean_projection_error" in rows[0]
    assert (tmp_path / "f.png").stat().st_size > 1000
    d = table.as_dict()
    assert d["autoencoder"]["mean_projection_error"] < 1e-3 * d["pca"]["mean_projection_error"]
    assert "autoencoder" in str(table)
    assert set(default_projectors()) == {"pca", "kpca", "umap", "autoencoder"}


def test_pinn_task():
    traj, model = train_pinn(hidden=(8, 8), steps=60, record_every=20, seed=0, progress=False)
    assert traj.points.shape == (4, ParameterSpace.from_module(model).n_params)
    assert traj.metrics["loss"][-1] < traj.metrics["loss"][1]
    x, u = poisson_data(32)
    assert poisson_residual(model, x).shape == (32, 1)
    again, _ = train_pinn(hidden=(8, 8), steps=60, record_every=20, seed=0, progress=False)
    np.testing.assert_array_equal(again.points, traj.points)


def _acceptance(traj, model, data, loss):
    projs = default_projectors(2, random_state=0)
    projs["umap"].n_neighbors = 8
    projs["autoencoder"].max_epochs = 1500
    reps = {
        name: fidelity(
            p, traj, model, data, loss, holdout=True if name in ("pca", "autoencoder") else None
        )
        for name, p in projs.items()
    }
    ae = reps.pop("autoencoder")
    best_proj = min(r.mean_projection_error for r in reps.values())
    best_loss = min(r.mean_relative_loss_error for r in reps.values())
    assert ae.mean_projection_error * 100 <= best_proj
    assert ae.mean_relative_loss_error * 10 <= best_loss
    assert ae.holdout.mean_projection_error <= 0.5 * reps["pca"].holdout.mean_projection_error


@pytest.mark.slow
def test_acceptance_two_digits_models_and_a_pinn():
    data = digits("train")
    x_img = data[0].view(-1, 1, 8, 8)
    torch.manual_seed(0)
    mlp = MLP(64, (16,), 10)
    _acceptance(
        train(mlp, data, epochs=30, lr=0.05, seed=0, progress=False), mlp, data, "cross_entropy"
    )
    torch.manual_seed(0)
    cnn = SmallCNN(1, 10, width=4)
    cnn_traj = train(cnn, (x_img, data[1]), epochs=30, lr=0.05, seed=0, progress=False)
    _acceptance(cnn_traj, cnn, (x_img, data[1]), "cross_entropy")
    pinn_traj, pinn = train_pinn(
        hidden=(16, 16), steps=600, record_every=20, seed=0, progress=False
    )
    _acceptance(pinn_traj, pinn, poisson_data(64), "mse")


def test_global_trajectory_fidelity(small_digits):
    parts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MLP(64, (8,), 10)
        parts.append(
            train(model, small_digits, epochs=8, seed=seed, run=f"s{seed}", progress=False)
        )
    traj = Trajectory.concat(parts)
    rep = fidelity(
        AutoEncoderProjector(hidden=(32, 32), max_epochs=300, random_state=0, progress=False),
        traj,
        model,
        small_digits,
        "cross_entropy",
        holdout=True,
    )
    # every other checkpoint of each run is held out
    assert len(rep.holdout.indices) == 8 and rep.mean_projection_error < 1e-8
