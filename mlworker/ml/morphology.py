"""Morphology: a CNN that reproduces the experts' vote fractions from cutouts (no Django).

Targets are vote COUNTS: for each answer k of a galaxy, c_k of n classifiers chose it. The
network predicts a mean fraction p_k and a concentration kappa_k, and is trained with the
beta-binomial likelihood of the counts, so galaxies with few votes weigh less and the
predictive uncertainty sqrt(p (1 - p) / (1 + kappa)) comes with every prediction.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from mlworker.ml.device import autocast, pick_device


@dataclass
class MorphologyConfig:
    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 64)
    hidden: int = 64
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    augment: bool = True
    seed: int = 0


@dataclass
class MorphologyData:
    """A packed dataset export: images (n, H, W) float32, counts (n, k), n_votes (n,)."""

    images: np.ndarray
    counts: np.ndarray
    n_votes: np.ndarray
    galaxy_ids: np.ndarray
    is_test: np.ndarray
    answers: list[str]

    @classmethod
    def load(cls, path) -> "MorphologyData":
        with np.load(path, allow_pickle=False) as f:
            return cls(
                images=f["images"],
                counts=f["counts"],
                n_votes=f["n_votes"],
                galaxy_ids=f["galaxy_ids"],
                is_test=f["is_test"],
                answers=[str(a) for a in f["answers"]],
            )

    def save(self, path) -> None:
        np.savez(
            path,
            images=self.images,
            counts=self.counts,
            n_votes=self.n_votes,
            galaxy_ids=self.galaxy_ids,
            is_test=self.is_test,
            answers=np.asarray(self.answers),
        )


@dataclass
class TrainResult:
    checkpoint: dict
    metrics: dict
    input_ranges: dict
    device: str
    history: list[dict] = field(default_factory=list)


def normalise(images: np.ndarray) -> np.ndarray:
    """Robust per-image normalisation: background-subtract (median), scale by the noise
    (1.4826 MAD), then asinh to compress bright cores. NaNs become background."""
    images = np.nan_to_num(np.asarray(images, dtype=np.float32))
    flat = images.reshape(len(images), -1)
    background = np.median(flat, axis=1)
    sigma = 1.4826 * np.median(np.abs(flat - background[:, None]), axis=1)
    sigma = np.where(sigma > 0, sigma, 1.0)
    scaled = (images - background[:, None, None]) / sigma[:, None, None]
    return np.arcsinh(scaled / 3.0).astype(np.float32)


def input_statistics(images: np.ndarray) -> np.ndarray:
    """(n, 3): log10 noise level, log10 total flux above background, peak S/N."""
    images = np.nan_to_num(np.asarray(images, dtype=np.float32))
    flat = images.reshape(len(images), -1)
    background = np.median(flat, axis=1)
    sigma = np.maximum(1.4826 * np.median(np.abs(flat - background[:, None]), axis=1), 1e-12)
    flux = np.clip((flat - background[:, None]).sum(axis=1), 1e-12, None)
    peak = (flat.max(axis=1) - background) / sigma
    return np.stack([np.log10(sigma), np.log10(flux), peak], axis=1)


STAT_NAMES = ("log10_noise", "log10_flux", "peak_snr")


def input_ranges(images: np.ndarray) -> dict:
    stats = input_statistics(images)
    lo, hi = np.percentile(stats, 0.5, axis=0), np.percentile(stats, 99.5, axis=0)
    return {name: [float(a), float(b)] for name, a, b in zip(STAT_NAMES, lo, hi, strict=True)}


def out_of_distribution(images: np.ndarray, ranges: dict) -> np.ndarray:
    """True where an image's statistics fall outside the training range (with 10% slack)."""
    if not ranges:
        return np.zeros(len(images), dtype=bool)
    stats = input_statistics(images)
    outside = np.zeros(len(images), dtype=bool)
    for j, name in enumerate(STAT_NAMES):
        lo, hi = ranges[name]
        slack = 0.1 * (hi - lo)
        outside |= (stats[:, j] < lo - slack) | (stats[:, j] > hi + slack)
    return outside


class MorphologyCNN(nn.Module):
    """conv stack -> global pool -> dense -> (fraction logits, log concentration) per answer."""

    def __init__(self, n_answers: int, channels: tuple[int, ...] = (16, 32, 64), hidden: int = 64):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c_in = c
        self.features = nn.Sequential(*layers)  # (B, 1, H, W) -> (B, C, H/8, W/8)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 2 * n_answers)
        )
        self.n_answers = n_answers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.features(x).mean(dim=(2, 3))  # (B, C)
        out = self.head(z)  # (B, 2K)
        logits, log_kappa = out[:, : self.n_answers], out[:, self.n_answers :]
        return logits, log_kappa.clamp(-3, 8)


def beta_binomial_nll(
    logits: torch.Tensor, log_kappa: torch.Tensor, counts: torch.Tensor, n: torch.Tensor
) -> torch.Tensor:
    """Mean over galaxies of the summed (over answers) beta-binomial negative log likelihood."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    kappa = torch.exp(log_kappa)
    a, b = p * kappa, (1 - p) * kappa
    n = n[:, None].expand_as(counts)
    log_like = (
        torch.lgamma(n + 1)
        - torch.lgamma(counts + 1)
        - torch.lgamma(n - counts + 1)
        + torch.lgamma(counts + a)
        + torch.lgamma(n - counts + b)
        - torch.lgamma(n + a + b)
        + torch.lgamma(a + b)
        - torch.lgamma(a)
        - torch.lgamma(b)
    )
    return -(log_like.sum(dim=1)).mean()


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random rotation by multiples of 90 degrees, flips and small shifts (whole batch)."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if torch.rand(1, generator=generator) < 0.5:
        x = torch.flip(x, dims=(3,))
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def fraction_metrics(pred: np.ndarray, counts: np.ndarray, n_votes: np.ndarray, answers: list[str]) -> dict:
    """Per answer: bias (mean model - human), scatter (std of the difference) and RMSE."""
    human = counts / np.maximum(n_votes, 1)[:, None]
    diff = pred - human
    per = {
        a: {
            "bias": float(diff[:, j].mean()),
            "scatter": float(diff[:, j].std()),
            "rmse": float(np.sqrt((diff[:, j] ** 2).mean())),
        }
        for j, a in enumerate(answers)
    }
    return {"per_answer": per, "rmse": float(np.sqrt((diff**2).mean())), "n_test": int(len(pred))}


def train(cfg: MorphologyConfig, data: MorphologyData, progress: Callable[[dict], bool] | None = None) -> TrainResult:
    """Trains on the non-test galaxies, evaluates on the held-out ones. ``progress`` gets
    {epoch, n_epochs, loss, eta_seconds} after each epoch and returns False to cancel."""
    torch.manual_seed(cfg.seed)
    device = pick_device()
    generator = torch.Generator().manual_seed(cfg.seed)
    x = torch.from_numpy(normalise(data.images))[:, None]
    counts = torch.from_numpy(data.counts.astype(np.float32))
    n = torch.from_numpy(data.n_votes.astype(np.float32))
    train_idx = np.flatnonzero(~data.is_test)
    test_idx = np.flatnonzero(data.is_test)
    model = MorphologyCNN(len(data.answers), cfg.channels, cfg.hidden).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=max(1, cfg.epochs * int(np.ceil(len(train_idx) / cfg.batch_size)))
    )
    history, started = [], time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total, seen = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            xb = x[batch].to(device).contiguous(memory_format=torch.channels_last)
            if cfg.augment:
                xb = augment(xb, generator)
            with autocast(device):
                logits, log_kappa = model(xb)
            loss = beta_binomial_nll(logits.float(), log_kappa.float(), counts[batch].to(device), n[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        elapsed = time.perf_counter() - started
        entry = {
            "epoch": epoch,
            "n_epochs": cfg.epochs,
            "loss": total / max(seen, 1),
            "eta_seconds": elapsed / epoch * (cfg.epochs - epoch),
        }
        history.append(entry)
        if progress is not None and progress(entry) is False:
            raise InterruptedError("training cancelled")
    checkpoint = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_args": {"n_answers": len(data.answers), "channels": list(cfg.channels), "hidden": cfg.hidden},
        "answers": data.answers,
        "config": asdict(cfg),
        "step": cfg.epochs,
    }
    fractions, _ = predict(checkpoint, data.images[test_idx], device=device)
    metrics = fraction_metrics(fractions, data.counts[test_idx], data.n_votes[test_idx], data.answers)
    metrics["final_train_loss"] = history[-1]["loss"] if history else None
    return TrainResult(
        checkpoint=checkpoint,
        metrics=metrics,
        input_ranges=input_ranges(data.images[train_idx]),
        device=device.type,
        history=history,
    )


def load_model(checkpoint: dict, device: torch.device) -> MorphologyCNN:
    args = checkpoint["model_args"]
    model = MorphologyCNN(args["n_answers"], tuple(args["channels"]), args["hidden"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def predict(
    checkpoint: dict,
    images: np.ndarray,
    device: torch.device | None = None,
    batch_size: int = 256,
    model: MorphologyCNN | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(fractions (n, k), uncertainty (n,)): the mean over answers of sqrt(p(1-p)/(1+kappa))."""
    device = device or pick_device()
    model = model or load_model(checkpoint, device)
    x = torch.from_numpy(normalise(images))[:, None]
    fractions, uncertainty = [], []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device).contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits, log_kappa = model(xb)
            p = torch.sigmoid(logits.float())
            kappa = torch.exp(log_kappa.float())
            fractions.append(p.cpu().numpy())
            uncertainty.append(torch.sqrt(p * (1 - p) / (1 + kappa)).mean(dim=1).cpu().numpy())
    if not fractions:
        return np.zeros((0, checkpoint["model_args"]["n_answers"]), np.float32), np.zeros(0, np.float32)
    return np.concatenate(fractions), np.concatenate(uncertainty)


def checkpoint_weights_only_load(path, device: torch.device) -> dict:
    return torch.load(path, map_location=device, weights_only=True)
