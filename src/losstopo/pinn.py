"""A built-in physics-informed task: the 1D Poisson problem ``u'' = f`` on ``[-1, 1]``.

The exact solution is ``u(x) = sin(pi x)`` (so ``f = -pi^2 sin(pi x)``, ``u(-1) = u(1) = 0``).
:func:`train_pinn` trains a :class:`~losstopo.models.PINNMLP` on the PDE residual at collocation
points plus the boundary conditions and records its :class:`~losstopo.Trajectory`.

Landscapes and fidelity: the evaluation engine runs under ``torch.inference_mode`` (no input
gradients), so it cannot evaluate the residual ``u''(x) - f(x)``. Use the data-fit loss instead,
the mean squared error to the known solution at collocation points, an ordinary
``(inputs, targets)`` pair from :func:`poisson_data` with ``loss="mse"``. Residual-based landscapes
need input gradients (``torch.func`` in a custom loop).

Examples
--------
>>> from losstopo.pinn import poisson_data, train_pinn
>>> traj, model = train_pinn(hidden=(8, 8), steps=20, record_every=10, seed=0, progress=False)
>>> traj.points.shape, traj.steps.tolist()
((3, 97), [0, 10, 20])
>>> x, u = poisson_data(n=16)
>>> tuple(x.shape), tuple(u.shape)
((16, 1), (16, 1))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .errors import validate_float, validate_int
from .models import PINNMLP
from .trajectory import Trajectory, TrajectoryRecorder

__all__ = ["poisson_data", "poisson_residual", "poisson_solution", "train_pinn"]


def poisson_solution(x: torch.Tensor) -> torch.Tensor:
    """The exact solution ``u(x) = sin(pi x)``."""
    return torch.sin(math.pi * x)


def poisson_source(x: torch.Tensor) -> torch.Tensor:
    """The right-hand side ``f(x) = -pi^2 sin(pi x)``."""
    return -(math.pi**2) * torch.sin(math.pi * x)


def poisson_data(n: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Collocation points on ``[-1, 1]`` and the exact solution there (``loss="mse"``)."""
    n = validate_int(n, "n", low=2)
    x = torch.linspace(-1.0, 1.0, n).unsqueeze(1)
    return x, poisson_solution(x)


def poisson_residual(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``u''(x) - f(x)`` at the points ``x`` (n, 1), by automatic differentiation."""
    x = x.detach().clone().requires_grad_(True)
    u = model(x)
    (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (d2u,) = torch.autograd.grad(du.sum(), x, create_graph=True)
    return d2u - poisson_source(x)


def train_pinn(
    model: torch.nn.Module | None = None,
    hidden: Sequence[int] = (32, 32),
    steps: int = 600,
    lr: float = 1e-3,
    n_collocation: int = 64,
    boundary_weight: float = 10.0,
    record_every: int = 20,
    seed: int = 0,
    run: str = "pinn",
    progress: bool = True,
) -> tuple[Trajectory, torch.nn.Module]:
    """Train a PINN (Adam, full batch) on the Poisson problem; record its trajectory.

    Returns the trajectory (step 0 = initialisation, then every ``record_every`` steps, with the
    PINN loss in ``metrics["loss"]``) and the trained model.
    """
    steps = validate_int(steps, "steps", low=1)
    record_every = validate_int(record_every, "record_every", low=1)
    n_collocation = validate_int(n_collocation, "n_collocation", low=2)
    lr = validate_float(lr, "lr", low=0.0, strict_low=True)
    boundary_weight = validate_float(boundary_weight, "boundary_weight", low=0.0)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = PINNMLP(1, tuple(hidden), 1)
    x = torch.linspace(-1.0, 1.0, n_collocation).unsqueeze(1)
    xb = torch.tensor([[-1.0], [1.0]])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    recorder = TrajectoryRecorder(model, run=run)
    recorder.record(0)
    iterator: range = range(1, steps + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"pinn {run}", unit="step", leave=False)
    try:
        for step in iterator:
            opt.zero_grad(set_to_none=True)
            res = poisson_residual(model, x)
            loss = (res**2).mean() + boundary_weight * (model(xb) ** 2).mean()
            loss.backward()
            opt.step()
            if step % record_every == 0:
                recorder.record(step, loss=float(loss.detach()))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return recorder.trajectory(), model
