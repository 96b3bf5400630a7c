"""The learned environment estimator (no Django): a network that reads each galaxy's
neighbourhood and predicts its true log overdensity, and its true redshift, each with an
uncertainty.

The neighbourhood is a 2-D histogram per kind of neighbour (with a spectroscopic redshift, or
with a photometric one only): projected comoving distance (0-0.5-1-2-3 h^-1 Mpc) against the
neighbour's redshift offset in t = ln(1 + z) (12 bins over +-3 photometric sigmas), counted
around the galaxy's best redshift; beside it, the galaxy's own redshift, whether it is
spectroscopic, its photometric sigma and its magnitude. Trained on mock light cones whose
truth (log delta_5 from every galaxy's redshift-space redshift) is known.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mlworker.ml.common import TrainResult, fit_one_cycle
from mlworker.ml.device import pick_device
from mlworker.ml.emulator import beta_nll
from mlworker.ml.environment import Catalog, comoving_distance, densest, spearman, tangent_plane, xi_s

RADII_MPC = (0.0, 0.5, 1.0, 2.0, 3.0)
DT_BINS = 12
DT_SIGMAS = 3.0
TARGETS = ("log_delta5", "dt")  # true log overdensity; true t minus the best t


@dataclass
class LearnedConfig:
    train_galaxies: int = 150_000  # per mock light cone
    train_mocks: int = 2
    side_deg: float = 4.0
    hidden: int = 256
    epochs: int = 12
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    beta_nll: float = 0.5
    seed: int = 0


def neighbourhood_features(catalog: Catalog, sigma_t: float | None = None) -> np.ndarray:
    """(n, 4 + 2 x 4 x 12) float32: own t, spectroscopic flag, photometric sigma (in units of
    the catalog's typical one), magnitude - 24; then log(1 + counts) of the histograms."""
    from scipy.spatial import cKDTree

    from mlworker.ml.environment import _slices

    n = len(catalog)
    z = catalog.z_best
    t = np.log1p(z)
    if sigma_t is None:
        photo = ~catalog.has_spec
        sigma_t = float(np.median(catalog.sigma_t[photo])) if photo.any() else 0.03
    typical = float(sigma_t)
    half = DT_SIGMAS * typical
    u, v = tangent_plane(catalog.ra, catalog.dec)
    dc = comoving_distance(z)
    spec = catalog.has_spec.astype(np.int64)
    n_r = len(RADII_MPC) - 1
    hist = np.zeros((n, 2, n_r, DT_BINS), dtype=np.float32)
    r_max = RADII_MPC[-1]
    for members, candidates in _slices(t, half):
        tree = cKDTree(np.column_stack([u[candidates], v[candidates]]))
        for start in range(0, len(members), 10_000):
            chunk = members[start : start + 10_000]
            lists = tree.query_ball_point(np.column_stack([u[chunk], v[chunk]]), r=r_max / dc[chunk])
            lengths = np.fromiter((len(a) for a in lists), dtype=np.int64, count=len(chunk))
            if not lengths.sum():
                continue
            other = candidates[np.concatenate([np.asarray(a, dtype=np.int64) for a in lists if len(a)])]
            owner = np.repeat(np.arange(len(chunk)), lengths)
            me = chunk[owner]
            dt = t[other] - t[me]
            keep = (other != me) & (np.abs(dt) < half)
            other, owner, me, dt = other[keep], owner[keep], me[keep], dt[keep]
            r = np.hypot(u[other] - u[me], v[other] - v[me]) * dc[me]
            r_bin = np.clip(np.searchsorted(RADII_MPC, r, side="right") - 1, 0, n_r - 1)
            t_bin = np.clip(((dt + half) / (2 * half) * DT_BINS).astype(np.int64), 0, DT_BINS - 1)
            flat = ((owner * 2 + spec[other]) * n_r + r_bin) * DT_BINS + t_bin
            counts = np.bincount(flat, minlength=len(chunk) * 2 * n_r * DT_BINS)
            hist[chunk] = counts.reshape(len(chunk), 2, n_r, DT_BINS)
    own = np.column_stack(
        [
            t,
            catalog.has_spec.astype(np.float32),
            np.where(catalog.has_spec, 0.0, catalog.sigma_t / typical),
            np.nan_to_num(catalog.mag - 24.0, nan=0.0),
        ]
    ).astype(np.float32)
    return np.concatenate([own, np.log1p(hist.reshape(n, -1))], axis=1)


class EnvironmentNet(nn.Module):
    """MLP: features -> (mean, log sigma) of each target (standardised)."""

    def __init__(self, n_features: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(inplace=True),
            nn.Linear(hidden // 2, 2 * len(TARGETS)),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        k = len(TARGETS)
        return out[:, :k], out[:, k:].clamp(-7, 3)


@dataclass
class LearnedData:
    """Features of mock galaxies with their truth; ``is_test`` marks the held-out light cone."""

    features: np.ndarray
    target: np.ndarray  # (n, 2): true log delta_5, true t - best t
    z_best: np.ndarray
    is_test: np.ndarray
    ra: np.ndarray
    dec: np.ndarray

    FIELDS = ("features", "target", "z_best", "is_test", "ra", "dec")

    def save(self, path) -> None:
        np.savez(path, **{k: getattr(self, k) for k in self.FIELDS})

    @classmethod
    def load(cls, path) -> "LearnedData":
        with np.load(path, allow_pickle=False) as f:
            return cls(**{k: f[k] for k in cls.FIELDS})


def train(cfg: LearnedConfig, data: LearnedData, progress: Callable[[dict], bool] | None = None) -> TrainResult:
    torch.manual_seed(cfg.seed)
    device = pick_device()
    generator = torch.Generator().manual_seed(cfg.seed)
    ok = np.isfinite(data.target).all(axis=1)
    train_idx = np.flatnonzero(~data.is_test & ok)
    test_idx = np.flatnonzero(data.is_test)
    f_mean, f_std = data.features[train_idx].mean(axis=0), data.features[train_idx].std(axis=0) + 1e-6
    y_mean, y_std = data.target[train_idx].mean(axis=0), data.target[train_idx].std(axis=0) + 1e-9
    x = torch.from_numpy(((data.features - f_mean) / f_std).astype(np.float32))
    y = torch.from_numpy(np.nan_to_num((data.target - y_mean) / y_std).astype(np.float32))
    mask = torch.from_numpy(np.isfinite(data.target).astype(np.float32))
    model = EnvironmentNet(data.features.shape[1], cfg.hidden).to(device)

    def batch_loss(b):
        mean, log_sigma = model(x[b].to(device))
        return beta_nll(mean, log_sigma, y[b].to(device), mask[b].to(device), cfg.beta_nll)

    reporter = fit_one_cycle(
        model,
        train_idx,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        generator=generator,
        batch_loss=batch_loss,
        progress=progress,
    )
    checkpoint = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_args": {"n_features": int(data.features.shape[1]), "hidden": cfg.hidden},
        "feature_mean": f_mean.tolist(),
        "feature_std": f_std.tolist(),
        "target_mean": y_mean.tolist(),
        "target_std": y_std.tolist(),
        "config": asdict(cfg),
        "step": cfg.epochs,
    }
    out = predict(checkpoint, data.features[test_idx], data.z_best[test_idx], device=device, model=model)
    truth = data.target[test_idx, 0]
    z_true = np.expm1(np.log1p(data.z_best[test_idx]) + data.target[test_idx, 1])
    xi = xi_s(data.ra[test_idx], data.dec[test_idx], {"truth": z_true, "learned": out["z"]})
    metrics = {
        "n_test": int(len(test_idx)),
        "spearman": {"log_delta5": spearman(out["log_delta5"], truth)},
        "spearman_log_delta5": spearman(out["log_delta5"], truth),
        "densest_10": densest(out["log_delta5"], truth),
        "z_rms": float(np.sqrt(np.nanmean((np.log1p(out["z"]) - np.log1p(z_true)) ** 2))),
        "xi": xi,
        "xi_mean_ratio": xi["learned"]["mean_ratio"],
        "xi_within_2_sigma": xi["learned"]["within_2_sigma"],
        "train_seconds": round(reporter.seconds, 1),
    }
    return TrainResult(
        checkpoint=checkpoint,
        metrics=metrics,
        input_ranges={},
        device=device.type,
        history=reporter.history,
        evaluation={"log_delta5": out["log_delta5"], "truth_log_delta5": truth},
    )


def load_model(checkpoint: dict, device) -> EnvironmentNet:
    args = checkpoint["model_args"]
    model = EnvironmentNet(args["n_features"], args["hidden"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def predict(checkpoint: dict, features: np.ndarray, z_best: np.ndarray, *, device=None, model=None) -> dict:
    """log_delta5 and its sigma; the learned redshift z and its sigma (in z)."""
    device = device or pick_device()
    model = model or load_model(checkpoint, device)
    model.eval()
    f_mean, f_std = (np.asarray(checkpoint[k], dtype=np.float32) for k in ("feature_mean", "feature_std"))
    y_mean, y_std = (np.asarray(checkpoint[k], dtype=np.float32) for k in ("target_mean", "target_std"))
    x = torch.from_numpy(((features - f_mean) / f_std).astype(np.float32))
    means, sigmas = [], []
    with torch.inference_mode():
        for start in range(0, len(x), 65536):
            mean, log_sigma = model(x[start : start + 65536].to(device))
            means.append(mean.cpu().numpy())
            sigmas.append(log_sigma.exp().cpu().numpy())
    mean = np.concatenate(means) * y_std + y_mean if means else np.zeros((0, 2))
    sigma = np.concatenate(sigmas) * y_std if sigmas else np.zeros((0, 2))
    t = np.log1p(z_best) + mean[:, 1]
    z = np.expm1(t)
    return {
        "log_delta5": mean[:, 0],
        "log_delta5_err": sigma[:, 0],
        "z": z,
        "z_err": sigma[:, 1] * (1 + z),
    }
