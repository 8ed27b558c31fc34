"""The auto-encoder's networks: tanh MLPs and the exact residual interpolant of the decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int], act: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class ResidualInterpolant:
    """Cubic RBF (with a linear polynomial) through the decoder's residuals at the codes.

    ``smoothing > 0`` fits a smoothing spline instead of interpolating (``smoothing`` relative to
    the mean of the kernel matrix).
    """

    def __init__(self, codes: torch.Tensor, residual: torch.Tensor, smoothing: float = 0.0):
        n, d = codes.shape
        K = torch.cdist(codes, codes) ** 3
        if smoothing > 0:  # a smoothing spline: K + lambda I, lambda relative to K's scale
            K = K + smoothing * float(K.abs().mean()) * torch.eye(n, dtype=codes.dtype)
        P = torch.cat([torch.ones(n, 1, dtype=codes.dtype), codes], dim=1)
        top = torch.cat([K, P], dim=1)
        bottom = torch.cat([P.T, torch.zeros(d + 1, d + 1, dtype=codes.dtype)], dim=1)
        M = torch.cat([top, bottom], dim=0)
        rhs = torch.cat([residual, torch.zeros(d + 1, residual.shape[1], dtype=codes.dtype)])
        sol = torch.linalg.lstsq(M, rhs, driver="gelsd").solution
        self.codes = codes
        self.w, self.poly = sol[:n].contiguous(), sol[n:].contiguous()  # as a file gives back

    @classmethod
    def from_solution(
        cls, codes: torch.Tensor, w: torch.Tensor, poly: torch.Tensor
    ) -> ResidualInterpolant:
        """The interpolant with a known solution (``w``, ``poly``), as a field file stores it."""
        out = cls.__new__(cls)
        out.codes, out.w, out.poly = codes, w, poly
        return out

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        r = torch.sqrt(((z[:, None, :] - self.codes[None]) ** 2).sum(-1) + 1e-30)
        P = torch.cat([torch.ones(len(z), 1, dtype=z.dtype), z], dim=1)
        return (r**3) @ self.w + P @ self.poly
