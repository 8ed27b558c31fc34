"""Benchmark: projector fidelity (Neuro-Visualizer / GlobScope table), auto-encoder speed and memory.

Run with ``python benchmarks/bench_projectors.py`` (2 threads). Trajectories are trained outside the
timed regions with fixed seeds. Prints:

1. the fidelity table (mean relative projection error, mean relative loss error, the same on
   held-out checkpoints (every other one), fit time) of PCA, Kernel-PCA, UMAP and the auto-encoder
   on a 26k-parameter digits MLP (100 checkpoints), a digits CNN, the built-in PINN and a global
   landscape of two digits MLP runs; with the acceptance ratios;
2. the auto-encoder's training time on the 100 checkpoints of the 26k-parameter MLP;
3. the peak memory of ``basis="span"`` on 100 synthetic checkpoints of 5 million parameters,
   measured in a subprocess as peak RSS minus the RSS once the checkpoints exist;
4. PCA's round trip on in-span points.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from losstopo import Trajectory, train  # noqa: E402
from losstopo.datasets import digits  # noqa: E402
from losstopo.fidelity import default_projectors, fidelity  # noqa: E402
from losstopo.models import MLP, SmallCNN  # noqa: E402
from losstopo.pinn import poisson_data, train_pinn  # noqa: E402
from losstopo.projectors import PCAProjector  # noqa: E402

torch.set_num_threads(2)

MEMORY_CHILD = r"""
import json, resource, sys, time
import numpy as np
from losstopo.projectors import AutoEncoderProjector

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0

n, p = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
X = np.empty((n, p), dtype=np.float32)
X[0] = rng.standard_normal(p, dtype=np.float32)
for i in range(1, n):
    X[i] = X[i - 1] + 0.01 * rng.standard_normal(p, dtype=np.float32)
base = rss("VmRSS:")
t0 = time.perf_counter()
ae = AutoEncoderProjector(n_components=2, basis="span", random_state=0, progress=False).fit(X)
fit_s = time.perf_counter() - t0
codes = ae.transform(X[:8])
back = ae.inverse_transform(codes[:4])
err = float(np.max(np.linalg.norm(back - X[:4], axis=1) / np.linalg.norm(X[:4], axis=1)))
peak = rss("VmHWM:")
print(json.dumps({"checkpoints_bytes": X.nbytes, "rss_after_checkpoints": base, "peak_rss": peak,
                  "above": peak - base, "fit_seconds": fit_s, "max_rel_error": err}))
"""


def trajectories(quick: bool) -> dict[str, tuple[Trajectory, torch.nn.Module, object, str]]:
    data = digits("train")
    images = (data[0].view(-1, 1, 8, 8), data[1])
    out = {}
    torch.manual_seed(0)
    mlp = MLP(64, (128, 128), 10)
    out["mlp-26k"] = (
        train(mlp, data, epochs=29 if quick else 99, lr=0.05, seed=0, progress=False),
        mlp,
        data,
        "cross_entropy",
    )
    torch.manual_seed(0)
    cnn = SmallCNN(1, 10, width=8)
    out["cnn"] = (
        train(cnn, images, epochs=40, lr=0.05, seed=0, progress=False),
        cnn,
        images,
        "cross_entropy",
    )
    pinn_traj, pinn = train_pinn(seed=0, progress=False)
    out["pinn"] = (pinn_traj, pinn, poisson_data(128), "mse")
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        small = MLP(64, (32,), 10)
        runs.append(
            train(small, data, epochs=30, lr=0.05, seed=seed, run=f"seed{seed}", progress=False)
        )
    out["global-2mlp"] = (Trajectory.concat(runs), small, data, "cross_entropy")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--quick", action="store_true", help="fewer checkpoints, no 5M-parameter run"
    )
    parser.add_argument("--mem-params", type=int, default=5_000_000)
    args = parser.parse_args()
    cpu = "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in lscpu.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, StopIteration):
        pass
    print(
        f"# bench_projectors: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), python {platform.python_version()}"
    )

    print(
        "\n## Fidelity (relative projection error ||x - x'|| / ||x||; relative loss error |L(x) - L(x')| / L(x))"
    )
    print(
        f"{'trajectory':<12} {'n x params':>12} {'projector':<12} {'proj err':>9} {'rel loss err':>12} "
        f"{'held-out proj':>13} {'held-out loss':>13} {'fit s':>6}"
    )
    checks = []
    ae_fit_26k = float("nan")
    n_ckpt = 0
    for tname, (traj, model, data, loss) in trajectories(args.quick).items():
        reps = {}
        for pname, proj in default_projectors(2, random_state=0).items():
            rep = fidelity(model, data, loss, proj, traj, holdout=True)
            reps[pname] = rep
            print(
                f"{tname:<12} {f'{len(traj)}x{traj.n_params}':>12} {pname:<12} {rep.mean_projection_error:>9.3g} "
                f"{rep.mean_relative_loss_error:>12.3g} {rep.holdout.mean_projection_error:>13.3g} "
                f"{rep.holdout.mean_relative_loss_error:>13.3g} {rep.attrs['fit_seconds']:>6.2f}"
            )
            if tname == "mlp-26k" and pname == "autoencoder":
                ae_fit_26k = rep.attrs["fit_seconds"]
                n_ckpt = len(traj)
        ae = reps.pop("autoencoder")
        best_p = min(r.mean_projection_error for r in reps.values())
        best_l = min(r.mean_relative_loss_error for r in reps.values())
        ratio_p = best_p / ae.mean_projection_error if ae.mean_projection_error > 0 else np.inf
        ratio_l = (
            best_l / ae.mean_relative_loss_error if ae.mean_relative_loss_error > 0 else np.inf
        )
        ratio_h = ae.holdout.mean_projection_error / reps["pca"].holdout.mean_projection_error
        checks.append((tname, ratio_p, ratio_l, ratio_h))
    print("\n## Acceptance ratios (auto-encoder vs best of PCA / Kernel-PCA / UMAP)")
    for tname, rp, rl, rh in checks:
        print(
            f"{tname:<12} projection error {rp:.3g}x smaller (>= 100: {rp >= 100}); relative loss error "
            f"{'inf (AE error 0)' if not np.isfinite(rl) else f'{rl:.3g}x'} smaller (>= 10: {rl >= 10}); held-out "
            f"AE / PCA = {rh:.2f} (<= 0.5: {rh <= 0.5})"
        )

    print(
        f"\n## Auto-encoder training time, {n_ckpt} checkpoints x 26,122 parameters (MLP 64-128-128-10)"
    )
    print(f"fit {ae_fit_26k:.1f} s (<= 60 s: {ae_fit_26k <= 60})")

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 500))
    pca = PCAProjector(2).fit(X)
    inspan = pca.inverse_transform(rng.normal(size=(50, 2)))
    rt = np.abs(pca.inverse_transform(pca.transform(inspan)) - inspan).max()
    print(f"\n## PCA round trip on in-span points: max abs error {rt:.2e}")

    if not args.quick:
        n, p = 100, args.mem_params
        print(f"\n## basis='span' memory, {n} checkpoints x {p:,} parameters (subprocess)")
        res = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(n), str(p)], capture_output=True, text=True
        )
        if res.returncode != 0:
            print("memory run failed:", res.stderr[-2000:])
        else:
            m = json.loads(res.stdout.strip().splitlines()[-1])
            gib = 2**30
            print(
                f"checkpoints {m['checkpoints_bytes'] / gib:.2f} GiB; RSS with them {m['rss_after_checkpoints'] / gib:.2f} GiB; "
                f"peak {m['peak_rss'] / gib:.2f} GiB; peak above the checkpoints {m['above'] / gib:.3f} GiB "
                f"(<= 2 GB: {m['above'] <= 2e9}); fit {m['fit_seconds']:.1f} s; max rel. reconstruction "
                f"error {m['max_rel_error']:.1e}"
            )


if __name__ == "__main__":
    main()
