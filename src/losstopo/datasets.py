"""Built-in data (no downloads, ever) and readers for datasets the user already has.

- :func:`digits`: scikit-learn's 8x8 handwritten digits (ships inside scikit-learn).
- :func:`synthetic_classification`, :func:`synthetic_regression`: seeded synthetic tasks.
- :func:`load_cifar10`: the python-pickle batch folder of CIFAR-10 (``cifar-10-batches-py``).
- :func:`load_mnist`: MNIST idx files (optionally gzipped).

Every function returns an ``(inputs, targets)`` pair of tensors, which :func:`losstopo.evaluate`
and :func:`losstopo.train` accept directly.

Examples
--------
>>> from losstopo.datasets import digits
>>> x, y = digits(split="train")
>>> x.shape, y.dtype
(torch.Size([1348, 64]), torch.int64)
>>> x_img, _ = digits(split="test", images=True)
>>> tuple(x_img.shape[1:])
(1, 8, 8)
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .errors import DataError, InvalidParameterError, validate_choice, validate_float, validate_int

Split = Literal["train", "test", "all"]


def _split_indices(n: int, split: str, test_fraction: float, seed: int) -> np.ndarray:
    validate_choice(split, "split", ("train", "test", "all"))
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if split == "all":
        return np.arange(n)
    return np.sort(perm[n_test:] if split == "train" else perm[:n_test])


def digits(
    split: Split = "train", images: bool = False, test_fraction: float = 0.25, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits (1797 samples, 10 classes), pixels scaled to [0, 1].

    ``images=True`` gives ``(n, 1, 8, 8)`` tensors for CNNs, else ``(n, 64)``.
    """
    from sklearn.datasets import load_digits

    validate_float(test_fraction, "test_fraction", low=0.0)
    bunch = load_digits()
    idx = _split_indices(len(bunch.target), split, test_fraction, seed)
    x = torch.tensor(bunch.data[idx] / 16.0, dtype=torch.float32)
    if images:
        x = x.view(-1, 1, 8, 8)
    y = torch.tensor(bunch.target[idx], dtype=torch.int64)
    return x, y


def synthetic_classification(
    n_samples: int = 512, n_features: int = 16, n_classes: int = 3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs: ``n_classes`` classes in ``n_features`` dimensions."""
    n_samples = validate_int(n_samples, "n_samples", low=1)
    n_features = validate_int(n_features, "n_features", low=1)
    n_classes = validate_int(n_classes, "n_classes", low=2)
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    x = centers[y] + rng.normal(size=(n_samples, n_features))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)


def synthetic_regression(
    n_samples: int = 256, seed: int = 0, noise: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """``y = sin(3x) + noise`` on ``x`` in [-1, 1]; inputs ``(n, 1)``, targets ``(n, 1)`` float."""
    n_samples = validate_int(n_samples, "n_samples", low=1)
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1, 1, size=(n_samples, 1)), axis=0)
    y = np.sin(3 * x) + noise * rng.normal(size=x.shape)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


# ---------------------------------------------------------------------- CIFAR-10
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR-10 batches (dicts of bytes, lists and numpy arrays) and nothing else."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise DataError(
            f"The CIFAR-10 batch file refers to {module}.{name}, which a CIFAR-10 batch never "
            "does; refusing to load it (it may not be a CIFAR-10 file)."
        )


def load_cifar10(
    folder: str | Path, split: Literal["train", "test"] = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read CIFAR-10's python batches (``data_batch_1..5``, ``test_batch``) from ``folder``.

    Returns float images ``(n, 3, 32, 32)`` in [0, 1] and int64 labels. Nothing is downloaded.
    """
    validate_choice(split, "split", ("train", "test"))
    folder = Path(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    files = [folder / n for n in names if (folder / n).exists()]
    if not files:
        raise DataError(
            f"No CIFAR-10 {split} batches ({', '.join(names)}) in {folder}; point to the "
            "extracted 'cifar-10-batches-py' folder."
        )
    xs, ys = [], []
    for path in files:
        with open(path, "rb") as fh:
            try:
                batch = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
            except (pickle.UnpicklingError, EOFError) as exc:
                raise DataError(f"{path} is not a readable CIFAR-10 batch ({exc}).") from exc
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
        if data is None or labels is None:
            raise DataError(f"{path} has no 'data'/'labels' entries; it is not a CIFAR-10 batch.")
        xs.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(labels, dtype=np.int64))
    x = torch.from_numpy(np.concatenate(xs).astype(np.float32) / 255.0)
    return x, torch.from_numpy(np.concatenate(ys))


# ---------------------------------------------------------------------- MNIST
_IDX_DTYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx file (the MNIST format), gzipped or not."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an idx file (bad magic number).")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims))
    body = io.BytesIO(raw[4 + 4 * ndim :]).read()
    if len(body) != count * dtype.itemsize:
        raise DataError(f"{path} is truncated: expected {count} values of shape {dims}.")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def load_mnist(
    folder: str | Path, split: Literal["train", "test"] = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read MNIST idx files (``train-images-idx3-ubyte[.gz]`` ...) from ``folder``.

    Returns float images ``(n, 1, 28, 28)`` in [0, 1] and int64 labels. Nothing is downloaded.
    """
    validate_choice(split, "split", ("train", "test"))
    prefix = "train" if split == "train" else "t10k"
    folder = Path(folder)

    def find(kind: str) -> Path:
        for name in (f"{prefix}-{kind}", f"{prefix}-{kind}".replace("-idx", ".idx")):
            for suffix in ("", ".gz"):
                if (folder / (name + suffix)).exists():
                    return folder / (name + suffix)
        raise DataError(
            f"No MNIST file {prefix}-{kind}[.gz] in {folder}; point to the folder with the idx files."
        )

    images = read_idx(find("images-idx3-ubyte"))
    labels = read_idx(find("labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"MNIST {split} has {images.shape[0]} images but {labels.shape[0]} labels.")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


#: Name -> loader, as the command line knows them.
BUILTIN_DATA: dict[str, Callable[[], tuple[torch.Tensor, torch.Tensor]]] = {
    "digits": lambda: digits("train"),
    "digits-test": lambda: digits("test"),
    "digits-images": lambda: digits("train", images=True),
    "digits-images-test": lambda: digits("test", images=True),
    "synthetic": lambda: synthetic_classification(),
    "sine": lambda: synthetic_regression(),
}

#: The data each built-in model is trained and evaluated on by default.
DEFAULT_DATA_FOR_MODEL = {
    "mlp": "digits",
    "cnn": "digits-images",
    "resnet20": "digits-images",
    "resnet20-noskip": "digits-images",
    "resnet56": "digits-images",
    "resnet56-noskip": "digits-images",
    "pinn": "sine",
}


def load_builtin(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Built-in data by name (see ``BUILTIN_DATA``)."""
    if name not in BUILTIN_DATA:
        raise InvalidParameterError(
            f"Unknown data {name!r}; choose one of {', '.join(sorted(BUILTIN_DATA))} or give "
            "'module:function' returning (inputs, targets) or a DataLoader."
        )
    return BUILTIN_DATA[name]()
