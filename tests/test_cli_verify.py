"""`losstopo verify`: the plane rebuilt from the field file, the check stored back, and refusals."""

from __future__ import annotations

import h5py
import numpy as np
import torch

from losstopo import (
    Grid,
    LossField,
    PlaneProjector,
    TopologyCheck,
    evaluate,
    random_directions,
    verify_topology,
)
from losstopo.cli import main

MYMOD = (
    "import torch\n"
    "def model():\n    torch.manual_seed(0)\n"
    "    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))\n"
    "def data():\n    g = torch.Generator().manual_seed(0)\n"
    "    return torch.randn(30, 4, generator=g), torch.randint(0, 3, (30,), generator=g)\n"
)


def setup(tmp_path, monkeypatch):
    (tmp_path / "mymod.py").write_text(MYMOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = ["landscape", "--model", "mymod:model", "--data", "mymod:data", "--out", "f.h5"]
    assert main([*args, "--resolution", "9", "--extent", "2", "--seed", "3", "--quiet"]) == 0
    return ["verify", "f.h5", "--model", "mymod:model", "--data", "mymod:data", "--steps", "6"]


def test_verify_stores_the_same_check_as_the_python_call(tmp_path, monkeypatch, capsys):
    args = setup(tmp_path, monkeypatch)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "full-space check:" in out and "stored the check" in out
    field = LossField.load(tmp_path / "f.h5")
    stored = TopologyCheck.from_summary(field.topology)
    assert stored is not None and stored.n_minima >= 1
    # the same check by hand: the plane of `landscape --seed 3` around the same model
    import mymod

    model, data = mymod.model(), mymod.data()
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=3))
    direct = verify_topology(
        model, data, "cross_entropy", field, field.topology, projector=proj, steps=6, seed=3
    )
    for name in ("index", "loss", "lambda_min", "lambda_max", "straight_barrier", "status"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(direct, name))
    confirmed = stored.straight_barrier >= 0.5 * stored.picture_barrier
    some = stored.straight_barrier > max(field.topology.min_persistence, 1e-9)
    expected = np.where(confirmed, "confirmed", np.where(some, "overstated", "artifact"))
    assert stored.status.tolist() == expected.tolist()
    assert main(["topology", "f.h5", "--save"]) == 0  # the same basins: the check is kept
    assert "stored with the file's topology" in capsys.readouterr().out
    kept = TopologyCheck.from_summary(LossField.load(tmp_path / "f.h5").topology)
    assert kept is not None and kept.equals(stored)
    assert main(["topology", "f.h5", "--min-persistence", "100", "--save"]) == 0
    assert TopologyCheck.from_summary(LossField.load(tmp_path / "f.h5").topology) is None


def test_another_seed_or_projector_is_refused_in_one_sentence(tmp_path, monkeypatch, capsys):
    args = setup(tmp_path, monkeypatch)
    assert main([*args, "--projector-seed", "4"]) == 2
    err = capsys.readouterr().err
    assert "is not the field's" in err and "Traceback" not in err
    import mymod

    model, data = mymod.model(), mymod.data()
    given = PlaneProjector(model, torch.eye(2, 4 * 6 + 6 + 6 * 3 + 3))
    evaluate(model, data, "cross_entropy", given, Grid.square(resolution=3), progress=False).save(
        tmp_path / "given.h5"
    )
    assert main(["verify", "given.h5", *args[2:]]) == 0  # decoded by the plane the file carries
    assert "stored the check" in capsys.readouterr().out
    with h5py.File(tmp_path / "given.h5", "r+") as f:  # a file written before projectors were
        del f["projector"]
    assert main(["verify", "given.h5", *args[2:]]) == 2
    err = capsys.readouterr().err
    assert "its file carries no projector" in err and "Traceback" not in err


def test_a_field_of_a_fitted_projector_is_decoded_by_the_projector_its_file_carries(
    tmp_path, monkeypatch, capsys
):
    from losstopo import Trajectory
    from losstopo.projectors import PCAProjector

    (tmp_path / "mymod.py").write_text(MYMOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import mymod

    model, data = mymod.model(), mymod.data()
    n = sum(p.numel() for p in model.parameters())
    steps = np.cumsum(np.random.default_rng(0).normal(scale=0.1, size=(6, n)), axis=0)
    Trajectory(steps.astype(np.float32), np.arange(6), np.full(6, "run0")).save("traj.npz")
    model_args = ["--model", "mymod:model", "--data", "mymod:data"]
    assert main(["landscape", *model_args, "--projector", "pca", "--trajectory", "traj.npz",
                 "--resolution", "7", "--out", "pca.h5", "--quiet"]) == 0  # fmt: skip
    assert main(["verify", "pca.h5", *model_args, "--steps", "4"]) == 0
    assert "stored the check" in capsys.readouterr().out
    field = LossField.load("pca.h5")
    assert isinstance(field.projector, PCAProjector)
    stored = TopologyCheck.from_summary(field.topology)
    pca = PCAProjector(n_components=2).fit(Trajectory.load("traj.npz"))
    direct = verify_topology(model, data, "cross_entropy", field, field.topology, projector=pca,
                             steps=4, seed=int(field.attrs.get("seed", 0)))  # fmt: skip
    for name in ("index", "loss", "straight_barrier"):
        np.testing.assert_allclose(getattr(stored, name), getattr(direct, name), rtol=1e-9)
    np.testing.assert_array_equal(stored.status, direct.status)
