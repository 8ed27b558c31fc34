"""The Neuro-Visualizer auto-encoder projector (Elhamod & Karpatne 2023; GlobScope for 3D/global).

An encoder maps checkpoints to a latent box ``[-1, 1]^d`` (tanh), a decoder maps latent points
back to parameters; both are small MLPs trained on the checkpoints with a reconstruction loss
plus optional, weighted constraints:

- anchors: pin chosen checkpoints to chosen latent positions (presets ``"corners"``,
  ``"diagonal"``, ``"circle"``, or a list of ``(index, position)``);
- grid scaling (L_grid): for latent points sampled on the box, keep the log-ratio between the
  parameter distance from the decoded point to its nearest checkpoint and the latent distance to
  that checkpoint's code constant, so the decoded sheet is dense near the trajectory;
- the last checkpoint at the origin.

Layout of the inputs (``basis``):

- ``"span"``: the checkpoints are first written in an orthonormal basis of their affine span
  (exact for them). The basis is never stored: it is ``Q = (X - mean)^T A`` with a small
  ``(n, r)`` matrix ``A``, so the fitted projector keeps a reference to the checkpoints and
  ``O(n^2)`` numbers, and memory grows as ``n_checkpoints x n_params`` (the checkpoints
  themselves). The decoder is trained in parameter units (distances in the span are distances in
  parameter space), which makes the sheet between checkpoints follow the trajectory instead of
  memorising it.
- ``"dense"``: the paper's layout, inputs standardised per coordinate (a constant coordinate is
  left unscaled) and a first/last layer of ``n_params x hidden``.
- ``"auto"``: ``"span"`` whenever there are more parameters than checkpoints.

The encoder always sees its inputs standardised per coordinate and starts from the trajectory's
PCA layout (codes ordered along the trajectory). With ``exact=True`` the decoder also interpolates
its remaining residual at the training codes (a cubic radial basis function), so the fitted
checkpoints are reconstructed to rounding error; it is off by default because the sheet then
dips at every checkpoint, into basins the network does not have. ``transform`` of a point takes the encoder's
estimate (and the code of the nearest checkpoint) and refines it with a few L-BFGS steps to the
nearest point of the decoded sheet.

Examples
--------
>>> import numpy as np
>>> from losstopo.projectors import AutoEncoderProjector
>>> X = np.cumsum(np.random.default_rng(0).normal(size=(10, 50)), axis=0)
>>> ae = AutoEncoderProjector(n_components=2, max_epochs=200, random_state=0, progress=False)
>>> coords = ae.fit(X).transform(X)
>>> coords.shape, bool(np.abs(coords).max() <= 1)
((10, 2), True)
>>> exact = AutoEncoderProjector(max_epochs=200, exact=True, random_state=0, progress=False).fit(X)
>>> err = np.linalg.norm(exact.inverse_transform(exact.transform(X)) - X) / np.linalg.norm(X)
>>> bool(err < 1e-8)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InvalidParameterError, validate_choice, validate_float, validate_int
from ._common import check_min_points, check_n_components, check_random_state
from .anchors import pca_layout, resolve_anchors
from .base import Projector, as_coords, as_points
from .layouts import DenseBasis, Layout, SpanBasis
from .networks import ResidualInterpolant, mlp


# ---------------------------------------------------------------------- projector
class AutoEncoderProjector(Projector):
    """Neuro-Visualizer: an auto-encoder from checkpoints to a 1-3 dimensional latent box.

    Parameters
    ----------
    n_components : int in [1, 3]
        Latent dimension (2 for maps, 3 for GlobScope's 3D fields).
    hidden : sequence of int
        Widths of the encoder's and decoder's hidden layers.
    basis : {"auto", "span", "dense"}
        Input layout (module docstring). ``"auto"``: span when n_params > n_checkpoints.
    anchors : None, "corners", "diagonal", "circle" or list of (index, position)
        ``"corners"``: first and last checkpoint at opposite corners. ``"diagonal"``: the first
        run's checkpoints along the diagonal, spaced by their path length. ``"circle"``: the last
        checkpoint of every run evenly on a circle (one run: first and last opposite on it).
        Positions must lie inside the open box (-1, 1)^d.
    anchor_weight, grid_weight, origin_weight : float
        Weights of the anchor term, of L_grid, and of "last checkpoint at the origin" (0 = off).
    grid_samples : int
        Latent points sampled per step for L_grid.
    max_epochs, lr, patience, tol : training (full-batch Adam); stops early when the
        reconstruction error has not improved by 0.1 % for ``patience`` epochs or is below ``tol``.
    exact : bool
        Interpolate the decoder's residual at the training codes (fitted checkpoints reconstructed
        to rounding error). Off by default: the interpolated sheet dips at every fitted
        checkpoint, and those dips are basins of the picture that the network does not have
        (``docs/projectors.md``, measured with :func:`losstopo.verify_topology`).
    smoothing : float
        With ``exact``, fit the residual with a smoothing spline instead (0: interpolate).
    refine_steps : int
        L-BFGS steps of ``transform`` towards the nearest decoded point (0: encoder only).
    random_state : int or None
    progress : bool
        tqdm progress bar while training.
    device : torch device for training (default CPU; the networks are small)

    Attributes
    ----------
    codes_ : (n_checkpoints, n_components) latent codes of the fitted checkpoints
    history_ : dict of lists, per epoch: ``loss``, ``reconstruction``, ``anchor``, ``grid``,
        ``origin``
    basis_ : "span" or "dense"
    n_epochs_ : epochs run
    anchors_ : (indices, positions) used
    """

    decodes = True

    def __init__(
        self,
        n_components: int = 2,
        hidden: Sequence[int] = (64, 64),
        basis: str = "auto",
        anchors: Any = None,
        anchor_weight: float = 1.0,
        grid_weight: float = 0.0,
        origin_weight: float = 0.0,
        grid_samples: int = 64,
        max_epochs: int = 1000,
        lr: float = 2e-3,
        patience: int = 300,
        tol: float = 1e-10,
        exact: bool = False,
        smoothing: float = 0.0,
        refine_steps: int = 30,
        random_state: int | None = None,
        progress: bool = True,
        device: str | None = None,
    ):
        self.n_components = n_components
        self.hidden = hidden
        self.basis = basis
        self.anchors = anchors
        self.anchor_weight = anchor_weight
        self.grid_weight = grid_weight
        self.origin_weight = origin_weight
        self.grid_samples = grid_samples
        self.max_epochs = max_epochs
        self.lr = lr
        self.patience = patience
        self.tol = tol
        self.exact = exact
        self.smoothing = smoothing
        self.refine_steps = refine_steps
        self.random_state = random_state
        self.progress = progress
        self.device = device

    # ------------------------------------------------------------------ validation
    def _validate(self) -> dict[str, Any]:
        name = type(self).__name__
        hidden = tuple(self.hidden) if isinstance(self.hidden, (list, tuple)) else None
        if not hidden or not all(isinstance(h, (int, np.integer)) and h >= 1 for h in hidden):
            raise InvalidParameterError(
                f"The 'hidden' parameter of {name} must be a non-empty sequence of ints >= 1. "
                f"Got {self.hidden!r} instead."
            )
        return {
            "k": check_n_components(self.n_components, name),
            "hidden": tuple(int(h) for h in hidden),
            "basis": validate_choice(self.basis, "basis", ("auto", "span", "dense")),
            "anchor_weight": validate_float(self.anchor_weight, "anchor_weight", low=0.0),
            "grid_weight": validate_float(self.grid_weight, "grid_weight", low=0.0),
            "origin_weight": validate_float(self.origin_weight, "origin_weight", low=0.0),
            "grid_samples": validate_int(self.grid_samples, "grid_samples", low=1),
            "max_epochs": validate_int(self.max_epochs, "max_epochs", low=1),
            "lr": validate_float(self.lr, "lr", low=0.0, strict_low=True),
            "patience": validate_int(self.patience, "patience", low=1),
            "tol": validate_float(self.tol, "tol", low=0.0),
            "refine_steps": validate_int(self.refine_steps, "refine_steps", low=0),
            "smoothing": validate_float(self.smoothing, "smoothing", low=0.0),
            "seed": check_random_state(self.random_state, name),
        }

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None) -> AutoEncoderProjector:
        """Train the auto-encoder on the checkpoints (rows of ``X`` or a Trajectory)."""
        opts = self._validate()
        k = opts["k"]
        points = as_points(X)
        n, n_params = points.shape
        check_min_points(n, 2, type(self).__name__, "to learn a map")
        runs = np.asarray(getattr(X, "runs", np.zeros(n, dtype=str))).astype(str)
        kind = opts["basis"]
        if kind == "auto":
            kind = "span" if n_params > n else "dense"
        basis: Layout = SpanBasis(points) if kind == "span" else DenseBasis(points)
        coords = basis.coords
        anchor_idx, anchor_pos = resolve_anchors(
            self.anchors, k, n, runs, coords * np.sqrt(basis.weights)
        )
        dev = torch.device(self.device or "cpu")
        seed = (
            opts["seed"]
            if opts["seed"] is not None
            else int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._train(basis, coords, k, opts, anchor_idx, anchor_pos, dev, seed)
        self.basis_ = kind
        self.anchors_ = (anchor_idx, anchor_pos)
        self._basis = basis
        self.n_params_ = n_params
        self.n_components_ = k
        self.random_state_ = seed
        return self

    def _train(
        self,
        basis: Layout,
        coords: np.ndarray,
        k: int,
        opts: dict[str, Any],
        anchor_idx: np.ndarray,
        anchor_pos: np.ndarray,
        dev: torch.device,
        seed: int,
    ) -> None:
        dt = torch.float64
        n, dim = coords.shape
        w = np.sqrt(basis.weights)  # scaled so distances are parameter distances
        target_np = coords * w
        scale = float(np.sqrt(np.mean(np.sum(target_np**2, axis=1)))) or 1.0
        self._out_scale = w / scale  # decoder output * scale / w = coords
        target = torch.as_tensor(target_np / scale, dtype=dt, device=dev)
        enc_mean = coords.mean(axis=0)
        enc_std = coords.std(axis=0)
        enc_std = np.where(enc_std > 1e-300, enc_std, 1.0)
        self._enc_mean, self._enc_std = enc_mean, enc_std
        enc_in = torch.as_tensor((coords - enc_mean) / enc_std, dtype=dt, device=dev)
        encoder = mlp([dim, *opts["hidden"], k]).to(dev, dt)
        decoder = mlp([k, *opts["hidden"][::-1], dim]).to(dev, dt)
        # Start from the PCA layout: codes ordered along the trajectory.
        pca = pca_layout(target_np, k)
        layout = torch.as_tensor(pca, dtype=dt, device=dev)
        if len(anchor_idx):
            layout[torch.as_tensor(anchor_idx)] = torch.as_tensor(anchor_pos, dtype=dt, device=dev)
        opt = torch.optim.Adam(encoder.parameters(), lr=opts["lr"] * 5)
        for _ in range(300):
            opt.zero_grad()
            loss = ((torch.tanh(encoder(enc_in)) - layout) ** 2).mean()
            loss.backward()
            opt.step()
        params = [*encoder.parameters(), *decoder.parameters()]
        opt = torch.optim.Adam(params, lr=opts["lr"])
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.5, patience=100, min_lr=1e-6
        )
        a_idx = torch.as_tensor(anchor_idx, dtype=torch.long, device=dev)
        a_pos = torch.as_tensor(anchor_pos, dtype=dt, device=dev)
        gen = torch.Generator(device=dev).manual_seed(seed)
        history: dict[str, list[float]] = {
            key: [] for key in ("loss", "reconstruction", "anchor", "grid", "origin")
        }
        best = (float("inf"), [p.detach().clone() for p in params])
        stale = 0
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=opts["max_epochs"], desc="auto-encoder", unit="epoch", leave=False)
        zero = torch.zeros((), dtype=dt, device=dev)
        epoch = 0
        try:
            for epoch in range(1, opts["max_epochs"] + 1):
                opt.zero_grad()
                z = torch.tanh(encoder(enc_in))
                recon = ((decoder(z) - target) ** 2).sum(1).mean()
                anchor = ((z[a_idx] - a_pos) ** 2).sum(1).mean() if len(anchor_idx) else zero
                origin = (z[-1] ** 2).sum() if opts["origin_weight"] > 0 else zero
                grid = zero
                if opts["grid_weight"] > 0:
                    g = (
                        torch.rand(opts["grid_samples"], k, generator=gen, dtype=dt, device=dev) * 2
                        - 1
                    )
                    dist = torch.cdist(decoder(g), target)
                    j = dist.argmin(dim=1)
                    d_par = dist.gather(1, j[:, None]).squeeze(1)
                    d_lat = (g - z[j]).norm(dim=1)
                    ratio = torch.log(d_par + 1e-12) - torch.log(d_lat + 1e-12)
                    grid = ((ratio - ratio.mean()) ** 2).mean()
                total = (
                    recon
                    + opts["anchor_weight"] * anchor
                    + opts["grid_weight"] * grid
                    + opts["origin_weight"] * origin
                )
                total.backward()
                opt.step()
                sched.step(float(total.detach()))
                values = (
                    total.detach(),
                    recon.detach(),
                    anchor.detach(),
                    grid.detach(),
                    origin.detach(),
                )
                for key, v in zip(history, values, strict=True):
                    history[key].append(float(v))
                r = float(recon.detach())
                if r < best[0] * (1 - 1e-3):
                    best = (r, [p.detach().clone() for p in params])
                    stale = 0
                else:
                    stale += 1
                if bar is not None:
                    bar.update(1)
                    if epoch % 50 == 0:
                        bar.set_postfix(recon=f"{r:.2e}")
                if r < opts["tol"] or stale >= opts["patience"]:
                    break
        finally:
            if bar is not None:
                bar.close()
        with torch.no_grad():
            for p, saved in zip(params, best[1], strict=True):
                p.copy_(saved)
        for p in params:
            p.requires_grad_(False)
        self.encoder_, self.decoder_ = encoder, decoder
        self.history_ = history
        self.n_epochs_ = epoch
        self._dev, self._dt = dev, dt
        with torch.no_grad():
            codes = torch.tanh(encoder(enc_in))
            self._residual = (
                ResidualInterpolant(codes, target - decoder(codes), opts["smoothing"])
                if self.exact
                else None
            )
        self.codes_ = codes.cpu().numpy()
        self._target = target

    # ------------------------------------------------------------------ maps
    def _decode_t(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder_(z)
        if self._residual is not None:
            out = out + self._residual(z)
        return out

    def _to_coords(self, out: np.ndarray) -> np.ndarray:
        return out / self._out_scale

    def transform(self, X: Any) -> np.ndarray:
        """Latent coordinates: the nearest point of the decoded sheet to each point.

        Starts from the encoder's estimate and from the code of the nearest fitted checkpoint,
        keeps the better, then refines with ``refine_steps`` L-BFGS steps (kept only if closer).
        """
        points = self._points_to_transform(X)
        coords, _ = self._basis.project(points)
        dev, dt = self._dev, self._dt
        target = torch.as_tensor(coords * self._out_scale, dtype=dt, device=dev)
        enc_in = torch.as_tensor((coords - self._enc_mean) / self._enc_std, dtype=dt, device=dev)
        with torch.no_grad():
            z_enc = torch.tanh(self.encoder_(enc_in))
            nearest = torch.cdist(target, self._target).argmin(dim=1)
            z_near = torch.as_tensor(self.codes_, dtype=dt, device=dev)[nearest]
            e_enc = ((self._decode_t(z_enc) - target) ** 2).sum(1)
            e_near = ((self._decode_t(z_near) - target) ** 2).sum(1)
            z0 = torch.where((e_near < e_enc)[:, None], z_near, z_enc)
            e0 = torch.minimum(e_enc, e_near)
        if self.refine_steps > 0 and float(e0.max()) > 0:
            z = z0.clone().requires_grad_(True)
            opt = torch.optim.LBFGS(
                [z], lr=1.0, max_iter=self.refine_steps, line_search_fn="strong_wolfe"
            )

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = ((self._decode_t(z) - target) ** 2).sum()
                loss.backward()
                return loss

            opt.step(closure)
            with torch.no_grad():
                z1 = z.detach().clamp(-1.0, 1.0)  # the latent box is the decoder's domain
                e1 = ((self._decode_t(z1) - target) ** 2).sum(1)
                z0 = torch.where((e1 < e0)[:, None], z1, z0)
        return z0.cpu().numpy()

    def inverse_transform(self, coords: Any) -> np.ndarray:
        """Parameters at latent coordinates (float64, ``(n, n_params)``)."""
        self.check_fitted()
        a = as_coords(coords, self.n_components_)
        with torch.no_grad():
            out = self._decode_t(torch.as_tensor(a, dtype=self._dt, device=self._dev))
        return self._basis.decode(self._to_coords(out.cpu().numpy()))

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["anchors"] = (
            self.anchors if isinstance(self.anchors, str) or self.anchors is None else "custom"
        )
        if hasattr(self, "basis_"):
            out["basis_used"] = self.basis_
            out["random_state_used"] = self.random_state_
        return out
