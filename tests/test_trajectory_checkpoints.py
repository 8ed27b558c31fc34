import numpy as np
import pytest
import torch

from losstopo import ParameterSpace, Trajectory, TrajectoryRecorder, train
from losstopo.checkpoints import load_into, load_state_dict
from losstopo.errors import CheckpointError, ShapeMismatchError


def test_train_records_and_is_deterministic(tiny_data):
    def run():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        return model, train(model, tiny_data, epochs=3, seed=0, progress=False, batch_size=16)

    m1, t1 = run()
    _, t2 = run()
    assert t1.points.shape == (4, 83) and t1.steps.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(t1.points, t2.points)
    np.testing.assert_array_equal(t1.points[-1], ParameterSpace.from_module(m1).flatten(m1).numpy())
    assert np.all(np.isfinite(t1.metrics["loss"]))  # step 0: the initial parameters, evaluated


def test_step_recording(tiny_model, tiny_data):
    t = train(
        tiny_model,
        tiny_data,
        epochs=2,
        seed=0,
        progress=False,
        batch_size=10,
        record_every=2,
        record_unit="step",
    )
    assert t.steps.tolist() == [0, 2, 4, 6, 8, 10]


def test_recorder_and_concat_and_select(tiny_model):
    rec = TrajectoryRecorder(tiny_model, run="a")
    rec.record(0)
    rec.record(5)
    a = rec.trajectory()
    b = a.with_run("b")
    both = Trajectory.concat([a, b])
    assert both.run_ids == ["a", "b"] and len(both.select("b")) == 2
    with pytest.raises(ShapeMismatchError):
        Trajectory.concat([a, Trajectory.from_models([torch.nn.Linear(2, 2)])])


def test_save_load(tmp_path, tiny_model, tiny_data):
    t = train(tiny_model, tiny_data, epochs=2, seed=0, progress=False)
    t.save(tmp_path / "t.npz")
    u = Trajectory.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(t.points, u.points)
    assert u.names == t.names and u.shapes == t.shapes


def test_from_checkpoints_orders_by_step(tmp_path, tiny_model):
    for step in (10, 2, 1):
        with torch.no_grad():
            for p in tiny_model.parameters():
                p.fill_(step)
        torch.save(tiny_model.state_dict(), tmp_path / f"ckpt_{step}.pt")
    t = Trajectory.from_checkpoints(tmp_path, tiny_model)
    assert t.steps.tolist() == [1, 2, 10]
    assert t.points[:, 0].tolist() == [1.0, 2.0, 10.0]


def test_checkpoint_mismatch_named(tmp_path, tiny_model):
    other = torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.ReLU(), torch.nn.Linear(9, 3))
    torch.save(other.state_dict(), tmp_path / "other.pt")
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"Tensor '0.weight' .* shape \(9, 6\)"):
        load_into(tiny_model, tmp_path / "other.pt")
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(v, before[k])


def test_checkpoint_with_extra_tensor_refused(tmp_path, tiny_model):
    state = dict(tiny_model.state_dict())
    state["2.extra"] = torch.zeros(3)
    torch.save(state, tmp_path / "extra.pt")
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"tensor '2.extra' that the model does not have"):
        load_into(tiny_model, tmp_path / "extra.pt")
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(v, before[k])


class Custom:
    pass


def test_checkpoint_needing_pickle_refused(tmp_path, tiny_model):
    torch.save({"state_dict": tiny_model.state_dict(), "extra": Custom()}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        load_state_dict(tmp_path / "c.pt")
    assert "0.weight" in load_state_dict(tmp_path / "c.pt", allow_pickle=True)
