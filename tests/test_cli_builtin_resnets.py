"""The built-in ResNets on the command line: built for the data's images and trained here."""

import pytest
import torch

from losstopo import LossField, train
from losstopo.cli import main
from losstopo.cli.resolve import image_channels, resolve_task
from losstopo.errors import InvalidParameterError
from losstopo.models import CifarResNet, build_model

SMALL_DIGITS = (
    "import torch\n"
    "from losstopo.datasets import digits\n"
    "def data():\n    x, y = digits('train', images=True)\n    return x[:96], y[:96]\n"
    "def rgb():\n    g = torch.Generator().manual_seed(0)\n"
    "    return torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)\n"
)


@pytest.mark.parametrize("name", ["resnet20", "resnet20-noskip", "resnet56-noskip"])
def test_resnets_default_to_digit_images(name):
    task = resolve_task(name, None, None, seed=0)
    assert task.data_spec == "digits-images" and task.loss == "cross_entropy" and task.trainable
    assert task.in_channels == 1 and task.model.conv1.in_channels == 1
    blocks = list(task.model.layers)
    assert all(block.skip == (not name.endswith("-noskip")) for block in blocks)
    assert len(blocks) == (3 if name.startswith("resnet20") else 9) * 3
    assert task.model(task.data[0][:2]).shape == (2, 10)


def test_image_channels_follow_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smalldigits.py").write_text(SMALL_DIGITS)
    task = resolve_task("resnet20", "smalldigits:rgb", None, seed=0)
    assert task.in_channels == 3 and task.model(task.data[0][:2]).shape == (2, 10)
    assert resolve_task("mlp", None, None).in_channels is None  # not an image model
    assert image_channels("cnn", (torch.zeros(4, 64), torch.zeros(4))) is None  # flat inputs
    with pytest.raises(InvalidParameterError, match="does not take images"):
        build_model("mlp", in_channels=1)


def test_narrow_resnet_on_digits():
    net = CifarResNet(14, skip=False, in_channels=1, width=4)
    assert net.fc.in_features == 16 and net(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(InvalidParameterError, match="6n\\+2"):
        CifarResNet(12)


def test_landscape_trains_a_resnet(tmp_path, monkeypatch):
    """The centre of the field is the loss of the same ResNet trained by hand the same way."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smalldigits.py").write_text(SMALL_DIGITS)
    argv = ["landscape", "--model", "resnet20-noskip", "--data", "smalldigits:data"]
    argv += ["--epochs", "2", "--resolution", "3", "--deterministic", "--out", "r.h5", "--quiet"]
    assert main(argv) == 0
    field = LossField.load(tmp_path / "r.h5")
    assert field.attrs["model_spec"] == "resnet20-noskip" and field.attrs["checkpoint"] is None

    from smalldigits import data

    x, y = data()
    model = build_model("resnet20-noskip", seed=0, in_channels=1)
    torch.manual_seed(0)
    traj = train(model, (x, y), epochs=2, seed=0, lr=0.05, progress=False)
    assert len(traj) == 3
    model.eval()
    with torch.no_grad():
        expected = float(torch.nn.functional.cross_entropy(model(x), y))
    assert field.values[1, 1] == pytest.approx(expected, rel=1e-4)
