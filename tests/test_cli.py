"""`losstopo landscape` and `losstopo info`: values checked against direct evaluations."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from losstopo import LossField
from losstopo.cli import main
from losstopo.datasets import digits
from losstopo.models import build_model

MYMOD = (
    "import torch\n"
    "def model():\n    torch.manual_seed(0)\n    return torch.nn.Linear(4, 2)\n"
    "def data():\n    g = torch.Generator().manual_seed(0)\n"
    "    return torch.randn(10, 4, generator=g), torch.randint(0, 2, (10,), generator=g)\n"
)


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "losstopo.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def loss_at(model, vector, x, y):
    """Cross-entropy of ``model`` with its parameters replaced by ``vector``, by hand."""
    vector = torch.as_tensor(vector, dtype=torch.float32)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(vector, model.parameters())
        return float(torch.nn.functional.cross_entropy(model(x), y))


def flat(model):
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().double().numpy()


def test_landscape_values_equal_direct_evaluation(tmp_path, capsys):
    """The centre is the checkpoint, a corner is checkpoint + dx*d1 + dy*d2, both by hand."""
    from losstopo import random_directions

    model = build_model("mlp", seed=3)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    out = tmp_path / "f.h5"
    argv = ["landscape", "--model", "mlp", "--checkpoint", str(tmp_path / "m.pt")]
    assert main([*argv, "--resolution", "5", "--extent", "2", "--out", str(out), "--quiet"]) == 0
    field = LossField.load(out)
    assert field.values.shape == (5, 5)
    assert field.attrs["normalization"] == "filter" and field.attrs["seed"] == 0
    assert field.attrs["projector"]["name"] == "PlaneProjector" and not field.paths
    x, y = digits("train")
    centre = flat(model)
    assert field.values[2, 2] == pytest.approx(loss_at(model, centre, x, y), rel=1e-5)
    d = random_directions(model, n_components=2, normalization="filter", ignore="biasbn", seed=0)
    d = d.double().numpy().reshape(2, -1)
    corner = centre - 2.0 * d[0] + 1.0 * d[1]  # grid axes are -2, -1, 0, 1, 2
    assert field.values[0, 3] == pytest.approx(loss_at(model, corner, x, y), rel=1e-4)
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Grid(x=[-2..2]x5" in printed
    assert f"min {np.min(field.values):.6g}" in printed


def test_builtin_training_is_deterministic(tmp_path):
    args = ["landscape", "--model", "mlp", "--resolution", "3", "--epochs", "2", "--quiet"]
    main([*args, "--out", str(tmp_path / "a.h5")])
    main([*args, "--out", str(tmp_path / "b.h5")])
    np.testing.assert_array_equal(
        LossField.load(tmp_path / "a.h5").values, LossField.load(tmp_path / "b.h5").values
    )


def test_module_function_specs(tmp_path):
    (tmp_path / "mymod.py").write_text(MYMOD)
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
    field = LossField.load(tmp_path / "x.h5")
    assert field.values.shape == (3, 3)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 4, generator=g), torch.randint(0, 2, (10,), generator=g)
    with torch.no_grad():
        direct = float(torch.nn.functional.cross_entropy(model(x), y))
    assert field.values[1, 1] == pytest.approx(direct, rel=1e-6)


def _checkpoint_folder(tmp_path):
    """A 6-checkpoint run of mymod's Linear model, as ckpt_<step>.pt files in tmp_path/runA."""
    from losstopo import train

    (tmp_path / "mymod.py").write_text(MYMOD)
    mymod: dict = {}
    exec(MYMOD, mymod)
    model, (x, y) = mymod["model"](), mymod["data"]()
    traj = train(model, (x, y), epochs=5, seed=0, progress=False, lr=0.5)
    folder = tmp_path / "runA"
    folder.mkdir()
    for step, row in zip(traj.steps, traj.points, strict=True):
        w = torch.as_tensor(row)
        torch.save({"weight": w[:8].reshape(2, 4), "bias": w[8:]}, folder / f"ckpt_{step}.pt")
    return folder, traj, model, x, y


def test_landscape_pca_along_a_trajectory_folder(tmp_path):
    """--projector pca --trajectory DIR: grid, path and values as an independent PCA gives them."""
    from losstopo import Grid, PCAProjector

    folder, traj, model, x, y = _checkpoint_folder(tmp_path)
    r = run_cli(
        "landscape", "--model", "mymod:model", "--data", "mymod:data", "--projector", "pca",
        "--trajectory", str(folder), "--resolution", "5", "--out", "pca.h5", "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    field = LossField.load(tmp_path / "pca.h5")
    assert field.attrs["projector"]["name"] == "PCAProjector"
    assert field.attrs["trajectory"] == str(folder)
    pca = PCAProjector(n_components=2).fit(traj.points)
    coords = pca.transform(traj.points)
    grid = Grid.around(coords, resolution=5, margin=0.2)
    for name in grid.names:
        np.testing.assert_allclose(field.grid.axes[name], grid.axes[name], rtol=1e-6, atol=1e-9)
    path = field.paths["runA"]
    np.testing.assert_allclose(path.coords, coords, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(path.step, traj.steps)
    # a path's loss is the loss where the field puts it: at the decoded projected checkpoint
    by_hand = [loss_at(model, row, x, y) for row in pca.inverse_transform(coords)]
    np.testing.assert_allclose(path.loss, by_hand, rtol=1e-5)
    point = np.array([[grid.axes["x"][1], grid.axes["y"][3]]])
    decoded = pca.inverse_transform(point)[0]
    assert field.values[1, 3] == pytest.approx(loss_at(model, decoded, x, y), rel=1e-4)


def test_landscape_pca_on_a_builtin_uses_its_own_trajectory(tmp_path):
    out = tmp_path / "p.h5"
    argv = ["landscape", "--model", "mlp", "--projector", "pca", "--epochs", "2"]
    assert main([*argv, "--resolution", "4", "--out", str(out), "--quiet"]) == 0
    field = LossField.load(out)
    assert field.attrs["projector"]["name"] == "PCAProjector"
    assert field.paths["mlp"].step.tolist() == [0, 1, 2]
    # the path lies inside the grid it was fitted to
    for i, name in enumerate(field.grid.names):
        axis = field.grid.axes[name]
        assert axis[0] <= field.paths["mlp"].coords[:, i].min() <= axis[-1]


def test_deprecated_dims_alias(tmp_path):
    r = run_cli(
        "landscape", "--model", "mlp", "--epochs", "1", "--dims", "1", "--resolution", "3",
        "--out", "one.h5", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if "deprecated" in line]
    assert notes == ["losstopo: --dims is deprecated and will be removed; use --n-components."]
    assert LossField.load(tmp_path / "one.h5").grid.names == ("x",)


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
        (
            ["landscape", "--model", "mlp", "--n-components", "4", "--out", "x.h5"],
            r"'n_components' parameter must be an int in the range [1, 3]",
        ),
        (["landscape", "--model", "mlp", "--out", "missing/x.h5"], "does not exist"),
        (
            ["landscape", "--model", "mlp", "--checkpoint", "nope.pt", "--out", "x.h5"],
            "Checkpoint nope.pt does not exist",
        ),
        (
            ["landscape", "--model", "losstopo.models:SmallCNN", "--out", "x.h5"],
            "has no built-in data",
        ),
        (
            ["landscape", "--model", "mlp", "--projector", "tsne", "--out", "x.h5"],
            "Unknown --projector 'tsne'; choose one of random, ",
        ),
        (
            ["landscape", "--model", "mlp", "--projector", "phate", "--out", "x.h5"],
            "cannot decode",
        ),
        (
            [
                "landscape",
                "--model",
                "losstopo.models:SmallCNN",
                "--data",
                "synthetic",
                "--projector",
                "pca",
                "--out",
                "x.h5",
            ],
            "--projector pca is fitted on a trajectory; pass --trajectory",
        ),  # fmt: skip
        (
            [
                "landscape",
                "--model",
                "mlp",
                "--projector",
                "pca",
                "--trajectory",
                "none/",
                "--out",
                "x.h5",
            ],
            "--trajectory none does not exist",
        ),  # fmt: skip
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


def test_help_everywhere_says_what_out_is():
    out_kind = {
        "landscape": "output FILE",
        "report": "output FILE",
        "export": "output DIRECTORY",
        "demo": "output DIRECTORY",
        "compare-projectors": "output DIRECTORY",
    }
    r = run_cli("--help")
    assert r.returncode == 0 and "--out names a FILE" in r.stdout
    for cmd in ["landscape", "info", "topology", "export", "report", "demo", "compare-projectors"]:
        r = run_cli(cmd, "--help")
        assert r.returncode == 0 and "usage" in r.stdout
        text = " ".join(r.stdout.split())
        if cmd in out_kind:
            assert out_kind[cmd] in text, cmd
    assert "--n-components K" in run_cli("landscape", "--help").stdout


@pytest.mark.slow
def test_workers_run_the_argv_given_to_main(tmp_path, monkeypatch):
    """In-process ``main(argv)`` with another ``sys.argv``: the workers run ``argv``."""
    monkeypatch.setattr(sys, "argv", ["something-else", "info", "nothing.h5"])
    args = ["landscape", "--model", "mlp", "--resolution", "7", "--epochs", "2", "--quiet"]
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "w.h5")]) == 0
    main([*args, "--out", str(tmp_path / "s.h5")])
    w, s = LossField.load(tmp_path / "w.h5"), LossField.load(tmp_path / "s.h5")
    np.testing.assert_allclose(w.values, s.values, rtol=1e-6)
    assert w.attrs["world_size"] == 2


def _error_of(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_one_sentence_for_files_and_values_that_cannot_work(tmp_path, capsys):
    from losstopo import Grid

    out = str(tmp_path / "x.h5")
    land = ["landscape", "--model", "mlp", "--quiet", "--out", out]
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "folder.pt").mkdir()
    cases = {
        "text.pt": "is not a file written by torch.save",
        "empty.pt": "is empty (0 bytes)",
        "folder.pt": "is a directory",
    }
    for name, message in cases.items():
        assert message in _error_of(capsys, [*land, "--checkpoint", str(tmp_path / name)])
    huge = _error_of(capsys, [*land, "--resolution", "1000000", "--n-components", "3"])
    assert "10^6 points per axis in 3 dimensions" in huge and "of memory but" in huge
    assert "too large" in _error_of(capsys, [*land, "--extent", "1e308"])
    if not torch.cuda.is_available():
        assert "no usable CUDA GPU" in _error_of(capsys, [*land, "--device", "cuda"])
    # info on a field whose every value is NaN (as a diverged run writes it)
    LossField(
        np.full((3, 3), np.nan), Grid.square(3), metrics={"accuracy": np.full((3, 3), np.nan)}
    ).save(out)
    assert main(["info", out]) == 0
    assert "no finite values" in capsys.readouterr().out
    # a field of a newer format is refused, not half read
    import h5py

    with h5py.File(out, "r+") as f:
        f.attrs["format_version"] = 99
    assert "format version 99, newer than this losstopo reads" in _error_of(capsys, ["info", out])


def test_damaged_stores_refused_in_one_sentence(tmp_path, capsys):
    import h5py

    from losstopo import Grid, PlaneProjector, evaluate, random_directions
    from losstopo.errors import FieldFormatError, InvalidParameterError, InvalidTypeError

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    data = torch.randn(10, 4), torch.randint(0, 2, (10,))
    proj = PlaneProjector(model, random_directions(model, seed=0))
    store = tmp_path / "run.h5"

    def run(**kw):
        return evaluate(model, data, "cross_entropy", proj, Grid.square(4), store=store,
                        progress=False, **kw)  # fmt: skip

    def failing_run():
        class Stop(torch.nn.Linear):
            calls = 0

            def forward(self, x):
                Stop.calls += 1
                if Stop.calls == 5:
                    raise RuntimeError("stop")
                return super().forward(x)

        stop = Stop(4, 2)
        stop.load_state_dict(model.state_dict())
        with pytest.raises(Exception, match="stop"):
            evaluate(stop, data, "cross_entropy", proj, Grid.square(4), store=store,
                     progress=False, chunk_size=2)  # fmt: skip

    damages = {
        "done": lambda f: (f.__delitem__("done"), f.create_dataset("done", data=np.ones(3, bool))),
        "values": lambda f: (f.__delitem__("values"), f.create_dataset("values", data=np.ones(2))),
        "attrs": lambda f: f.attrs.__setitem__("attrs_json", "[1, 2]"),
        "fingerprint": lambda f: f.attrs.__setitem__("fingerprint_json", "7"),
    }
    for what, damage in damages.items():
        store.unlink(missing_ok=True)
        failing_run()
        with h5py.File(store, "r+") as f:
            damage(f)
        with pytest.raises(FieldFormatError, match="damaged") as info:
            run()
        assert len(str(info.value).splitlines()) == 1, what
        if what in ("done", "values"):  # info reads the arrays, not the attrs
            assert "damaged" in _error_of(capsys, ["info", str(store)])
    with pytest.raises(InvalidTypeError, match=r"Write metrics=\['accuracy'\]"):
        run(metrics="accuracy")
    with pytest.raises(InvalidParameterError, match="chunk_size"):
        run(chunk_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidParameterError, match="no usable CUDA GPU"):
            run(device="cuda")
