"""Models, data, losses and trajectories named on the command line, and training the built-ins.

Every subcommand resolves its ``--model``/``--data``/``--loss`` and trains a built-in model here,
so that they all mean the same thing by the same names.

Examples
--------
>>> task = resolve_task("mlp", None, None, seed=0)
>>> task.data_spec, task.loss, task.trainable
('digits', 'cross_entropy', True)
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameterError

if TYPE_CHECKING:
    from torch import nn

    from ..trajectory import Trajectory

#: Built-in models that ``losstopo`` trains itself when no ``--checkpoint`` is given.
TRAINABLE = (
    "mlp",
    "cnn",
    "resnet20",
    "resnet20-noskip",
    "resnet56",
    "resnet56-noskip",
    "pinn",
)


def import_object(spec: str, what: str) -> Any:
    """The object named by ``'module:name'``, imported from the current directory too."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidParameterError(
            f"{what} {spec!r} must be a built-in name or 'module:function'."
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
        raise InvalidParameterError(
            f"Could not import module {module_name!r} for {what} {spec!r} ({type(exc).__name__}: "
            f"{exc}); check that it is importable from the current directory."
        ) from exc
    obj = getattr(module, attr, None)
    if obj is None:
        raise InvalidParameterError(
            f"Module {module_name!r} has no attribute {attr!r} (from {what} {spec!r}); give "
            "'module:name' with a name the module defines."
        )
    return obj


def call_user(obj: Any, spec: str, what: str) -> Any:
    """Call a user's factory, turning its exception into one clear sentence."""
    try:
        return obj()
    except Exception as exc:  # noqa: BLE001 - the user's code; report it, do not crash
        raise InvalidParameterError(
            f"Calling {what} {spec!r} raised {type(exc).__name__}: {exc}; fix the function or "
            "give another one."
        ) from exc


def resolve_model(spec: str, seed: int = 0, in_channels: int | None = None) -> nn.Module:
    """A built-in model (initialised from ``seed``) or the ``nn.Module`` of ``module:function``.

    ``in_channels`` sets the input channels of a built-in image model (the ``Task``'s, taken from
    its data); other models ignore it.
    """
    from torch import nn

    from ..models import BUILTIN_MODELS, IMAGE_MODELS, build_model

    if spec in BUILTIN_MODELS:
        channels = in_channels if spec in IMAGE_MODELS else None
        return build_model(spec, seed=seed, in_channels=channels)
    if ":" not in spec:
        raise InvalidParameterError(
            f"Unknown model {spec!r}; choose one of {', '.join(sorted(BUILTIN_MODELS))} or give "
            "'module:function' returning an nn.Module."
        )
    obj = import_object(spec, "model")
    model = (
        call_user(obj, spec, "model") if callable(obj) and not isinstance(obj, nn.Module) else obj
    )
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(
            f"Model {spec!r} gave a {type(model).__name__}, expected an nn.Module."
        )
    return model


def resolve_data(spec: str) -> Any:
    """Built-in data by name, or what ``module:function`` returns (or ``module:name`` holds)."""
    from ..datasets import BUILTIN_DATA, load_builtin

    if spec in BUILTIN_DATA or ":" not in spec:
        return load_builtin(spec)  # raises the clear unknown-name error
    obj = import_object(spec, "data")
    return call_user(obj, spec, "data") if callable(obj) else obj


@dataclass
class Task:
    """A resolved ``--model``/``--data``/``--loss``.

    ``in_channels``: the channels of the data's images, which a built-in image model (CNN,
    ResNets) is built for (None for other data and models).

    ``physics``: the built-in PINN is trained on the Poisson residual
    (:func:`losstopo.pinn.train_pinn`) and, without ``--data``, evaluated on the known solution
    (``data_spec == "poisson"``). Other built-ins are trained with :func:`losstopo.train` on
    ``data`` and ``loss``.
    """

    model_spec: str
    model: nn.Module
    data: Any
    data_spec: str
    loss: str
    physics: bool = False
    in_channels: int | None = None

    @property
    def trainable(self) -> bool:
        """Whether ``losstopo`` trains this model itself (a built-in in :data:`TRAINABLE`)."""
        return self.model_spec in TRAINABLE


def resolve_task(
    model: str, data: str | None, loss: str | None, seed: int = 0, *, physics: bool = False
) -> Task:
    """Resolve the model (from ``seed``), its data (default: the model's built-in) and loss.

    The default loss is ``mse`` for the built-in PINN and ``cross_entropy`` otherwise. With
    ``physics`` and no ``data``, the built-in PINN gets the Poisson problem. A built-in image
    model takes its input channels from the data's images (1 for digits, 3 for CIFAR-10).
    """
    from ..datasets import DEFAULT_DATA_FOR_MODEL
    from ..models import BUILTIN_MODELS

    if model not in BUILTIN_MODELS and ":" not in model:
        resolve_model(model, seed=seed)  # raises: an unknown name is said before data is read
    is_pinn = model == "pinn"
    physics = physics and is_pinn
    if physics and not data:
        from ..pinn import poisson_data

        data_spec, dataset = "poisson", poisson_data()
    else:
        spec = data or DEFAULT_DATA_FOR_MODEL.get(model)
        if spec is None:
            raise InvalidParameterError(
                f"Model {model!r} has no built-in data; pass --data NAME or --data module:function."
            )
        data_spec, dataset = spec, resolve_data(spec)
    channels = image_channels(model, dataset)
    net = resolve_model(model, seed=seed, in_channels=channels)
    loss = loss or ("mse" if is_pinn else "cross_entropy")
    return Task(model, net, dataset, data_spec, loss, physics, channels)


def image_channels(model: str, data: Any) -> int | None:
    """The channels of ``data``'s images when ``model`` is a built-in image model, else None.

    Read from ``(inputs, targets)`` tensors or the first item of a map-style dataset whose
    inputs are ``(n, channels, height, width)`` images; None when the data has no such images.
    """
    from ..models import IMAGE_MODELS

    if model not in IMAGE_MODELS:
        return None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        inputs = data[0]
        return int(inputs.shape[1]) if getattr(inputs, "ndim", 0) == 4 else None
    getitem = getattr(data, "__getitem__", None)
    if getitem is not None and hasattr(data, "__len__") and len(data) > 0:
        try:
            first = getitem(0)
        except Exception:  # noqa: BLE001 - not indexable by 0: no channels to read
            return None
        if isinstance(first, (tuple, list)) and first:
            inputs = first[0]
            return int(inputs.shape[0]) if getattr(inputs, "ndim", 0) == 3 else None
    return None


def train_builtin(
    task: Task,
    model: nn.Module | None = None,
    *,
    epochs: int,
    seed: int,
    run: str = "run0",
    progress: bool = False,
) -> Trajectory:
    """Train a built-in model in place (``task.model`` by default); return its trajectory.

    SGD with learning rate 0.05 (CNN, ResNets) or 0.1, one checkpoint per epoch; the physics-informed PINN
    takes 20 Adam steps per "epoch", one checkpoint every 20 steps.
    """
    net = task.model if model is None else model
    if task.physics:
        from ..pinn import train_pinn

        traj, _ = train_pinn(
            net, steps=20 * epochs, record_every=20, seed=seed, run=run, progress=progress
        )
        return traj
    import torch

    from ..models import IMAGE_MODELS
    from ..trajectory import train

    torch.manual_seed(seed)
    return train(
        net,
        task.data,
        epochs=epochs,
        seed=seed,
        loss=task.loss,
        run=run,
        lr=0.05 if task.model_spec in IMAGE_MODELS else 0.1,
        progress=progress,
    )


def load_trajectory(
    path: str | os.PathLike[str], model: nn.Module, allow_pickle: bool = False
) -> Trajectory:
    """A folder of ``*.pt`` state_dicts (one run, named after the folder) or a ``.npz`` trajectory.

    The ``.npz`` is what :meth:`losstopo.Trajectory.save` writes; its rows must be parameter
    vectors of ``model``.
    """
    from ..space import ParameterSpace
    from ..trajectory import Trajectory

    where = Path(path)
    if where.is_dir():
        return Trajectory.from_checkpoints(
            where, model, run=where.resolve().name or "run0", allow_pickle=allow_pickle
        )
    if not where.is_file():
        raise InvalidParameterError(
            f"--trajectory {where} does not exist; give a folder of *.pt checkpoints or a .npz "
            "file written by Trajectory.save."
        )
    if where.suffix != ".npz":
        raise InvalidParameterError(
            f"--trajectory {where} is neither a folder of *.pt checkpoints nor a .npz file "
            "written by Trajectory.save; give one of those."
        )
    try:
        traj = Trajectory.load(where)
    except (KeyError, ValueError) as exc:
        raise InvalidParameterError(
            f"--trajectory {where} is not a trajectory written by Trajectory.save ({exc}); give "
            "that file or a folder of *.pt checkpoints."
        ) from exc
    n_params = ParameterSpace.from_module(model).n_params
    if traj.n_params != n_params:
        raise InvalidParameterError(
            f"--trajectory {where} holds {traj.n_params} parameters per checkpoint but the model "
            f"has {n_params}; give checkpoints of this model."
        )
    return traj
