import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from losstopo.datasets import (
    digits,
    load_cifar10,
    load_mnist,
    synthetic_classification,
    synthetic_regression,
)
from losstopo.errors import DataError, InvalidParameterError
from losstopo.models import MLP, PINNMLP, SmallCNN, build_model, resnet20, resnet56


def test_digits_splits_disjoint_and_complete():
    xtr, ytr = digits("train")
    xte, yte = digits("test")
    xall, _ = digits("all")
    assert len(xtr) + len(xte) == len(xall) == 1797
    assert xtr.max() <= 1.0 and ytr.dtype == torch.int64
    assert digits("train", images=True)[0].shape[1:] == (1, 8, 8)


def test_synthetic_tasks_are_seeded():
    a = synthetic_classification(seed=3)
    b = synthetic_classification(seed=3)
    assert torch.equal(a[0], b[0])
    x, y = synthetic_regression()
    assert y.dtype == torch.float32 and x.shape == y.shape


def write_cifar(folder, n_per_batch=4):
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_batch).tolist()
        with open(folder / name, "wb") as fh:
            pickle.dump(
                {
                    b"batch_label": name.encode(),
                    b"labels": labels,
                    b"data": data,
                    b"filenames": [b"x.png"] * n_per_batch,
                },
                fh,
                protocol=2,
            )
        batches[name] = (data, labels)
    return batches


def test_cifar10_reader(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    x, y = load_cifar10(tmp_path / "cifar-10-batches-py", "train")
    assert x.shape == (20, 3, 32, 32) and y.shape == (20,)
    data, labels = batches["data_batch_1"]
    np.testing.assert_allclose(x[0].numpy().ravel(), data[0] / 255.0, rtol=1e-6)
    assert y[:4].tolist() == labels
    xt, _ = load_cifar10(tmp_path / "cifar-10-batches-py", "test")
    assert xt.shape == (4, 3, 32, 32)


def test_cifar10_refuses_foreign_pickles(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(
            {"data": np.zeros((1, 3072), np.uint8), "labels": [0], "evil": Exception("x")}, fh
        )
    with pytest.raises(DataError, match="refusing"):
        load_cifar10(folder, "test")
    with pytest.raises(DataError, match="No CIFAR-10 train batches"):
        load_cifar10(folder, "train")


def write_idx(path, arr, gz=False):
    code = {np.uint8: 0x08}[arr.dtype.type]
    raw = (
        struct.pack(">BBBB", 0, 0, code, arr.ndim)
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + arr.tobytes()
    )
    path.write_bytes(gzip.compress(raw) if gz else raw)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reader(tmp_path, gz):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", imgs, gz)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, gz)
    x, y = load_mnist(tmp_path, "test")
    assert x.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(x[:, 0].numpy(), imgs / 255.0, rtol=1e-6)
    assert y.tolist() == labels.tolist()
    with pytest.raises(DataError, match="No MNIST file"):
        load_mnist(tmp_path, "train")


def test_models_shapes():
    assert MLP(64, (128, 128), 10)(torch.zeros(3, 64)).shape == (3, 10)
    assert SmallCNN(1, 10)(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert PINNMLP(2)(torch.zeros(3, 2)).shape == (3, 1)
    r = resnet20(skip=False)
    assert r(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in resnet20().parameters()) == 272474  # He et al.: 0.27M
    assert sum(p.numel() for p in resnet56().parameters()) == 855770  # He et al.: 0.85M
    with pytest.raises(InvalidParameterError, match="Unknown model"):
        build_model("vgg")


def test_residual_mlp_blocks_by_hand():
    """A block is relu(x + bn2(fc2(relu(bn1(fc1(x)))))), and skip=False drops the x."""
    from losstopo.models import ResidualMLP

    torch.manual_seed(0)
    net = ResidualMLP(64, width=8, n_blocks=3, skip=True).eval()
    plain = ResidualMLP(64, width=8, n_blocks=3, skip=False).eval()
    plain.load_state_dict(net.state_dict())  # same names, same weights
    assert (
        net.depth == plain.depth == 8
        and sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 8
    )
    x = torch.randn(5, 1, 8, 8)
    h = torch.relu(net.bn(net.stem(x.flatten(1))))
    block = net.blocks[0]
    inner = block.bn2(block.fc2(torch.relu(block.bn1(block.fc1(h)))))
    with torch.no_grad():
        torch.testing.assert_close(block(h), torch.relu(h + inner))
        torch.testing.assert_close(plain.blocks[0](h), torch.relu(inner))
        assert net(x).shape == (5, 10) and not torch.allclose(net(x), plain(x))
    with pytest.raises(InvalidParameterError, match="'n_blocks'"):
        ResidualMLP(n_blocks=-1)
