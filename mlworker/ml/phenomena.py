"""Phenomena from images: a CNN that sees only a simulated galaxy's mock image and says whether
it is before, in, or after its compaction ("blue nugget") phase and whether it merged
recently (no Django). The simulation's metadata are the labels, never inputs.

Evaluated on held-out RUNS (never on other cameras or snapshots of a training run, which
would share the galaxy), per image and per snapshot (probabilities averaged over cameras),
against a baseline that knows only the snapshot's redshift (kernel estimates of the label
frequencies at that redshift in the training runs).
"""

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlworker.ml.common import TrainResult, fit_one_cycle
from mlworker.ml.device import autocast, pick_device
from mlworker.ml.emulator import roc_auc
from mlworker.ml.imaging import conv_trunk, input_ranges, normalise, pooled, random_views

PHASES = ("pre", "blue_nugget", "post")
RECENT_MERGER_DA = 0.02  # a merger "happened recently" when 0 <= a_snapshot - a_merger < 0.02


@dataclass
class PhenomenaConfig:
    channels: tuple[int, ...] = (16, 32, 64, 96)
    hidden: int = 64
    epochs: int = 16
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    held_out_modulus: int = 5  # runs whose id % modulus == 0 are held out, for good
    min_train_runs: int = 8
    min_test_runs: int = 2
    baseline_bandwidth: float = 0.15  # in redshift, for the redshift-only baseline
    seed: int = 0


@dataclass
class PhenomenaData:
    """Mock images with their snapshot's labels. phase: index into PHASES; merger: a merger
    within the last RECENT scale-factor interval; run: index into run_names."""

    images: np.ndarray
    phase: np.ndarray
    merger: np.ndarray
    redshift: np.ndarray
    run: np.ndarray
    snapshot: np.ndarray
    camera: np.ndarray
    image_ids: np.ndarray
    is_test: np.ndarray
    run_names: list[str]

    def save(self, path) -> None:
        np.savez(
            path,
            images=self.images.astype(np.float16),
            run_names=np.asarray(self.run_names),
            **{
                k: getattr(self, k)
                for k in ("phase", "merger", "redshift", "run", "snapshot", "camera", "image_ids", "is_test")
            },
        )

    @classmethod
    def load(cls, path) -> "PhenomenaData":
        with np.load(path, allow_pickle=False) as f:
            return cls(
                images=f["images"].astype(np.float32),
                run_names=[str(r) for r in f["run_names"]],
                **{
                    k: f[k]
                    for k in ("phase", "merger", "redshift", "run", "snapshot", "camera", "image_ids", "is_test")
                },
            )


class PhenomenaCNN(nn.Module):
    """Conv blocks -> [global mean, global max] -> dense -> 3 phase logits + 1 merger logit."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 96), hidden: int = 64):
        super().__init__()
        self.features = conv_trunk(channels)
        self.head = nn.Sequential(
            nn.Linear(2 * channels[-1], hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.2),
            nn.Linear(hidden, len(PHASES) + 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(pooled(self.features(x)))
        return out[:, : len(PHASES)], out[:, len(PHASES)]


class RedshiftBaseline:
    """P(phase | z) and P(recent merger | z): Gaussian-kernel frequencies over the training
    snapshots (one vote per image), as a model that knows only the redshift would say."""

    def __init__(self, redshift: np.ndarray, phase: np.ndarray, merger: np.ndarray, bandwidth: float):
        self.z, self.phase, self.merger, self.h = redshift, phase, merger.astype(float), bandwidth

    def predict(self, redshift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.exp(-0.5 * ((np.asarray(redshift)[:, None] - self.z[None, :]) / self.h) ** 2) + 1e-12
        total = w.sum(axis=1, keepdims=True)
        phases = np.stack([(w * (self.phase == k)).sum(axis=1) for k in range(len(PHASES))], axis=1) / total
        merger = (w * self.merger).sum(axis=1) / total[:, 0]
        return phases, merger


def train(cfg: PhenomenaConfig, data: PhenomenaData, progress: Callable[[dict], bool] | None = None) -> TrainResult:
    torch.manual_seed(cfg.seed)
    device = pick_device()
    generator = torch.Generator().manual_seed(cfg.seed)
    train_idx, test_idx = np.flatnonzero(~data.is_test), np.flatnonzero(data.is_test)
    if len(train_idx) < 2 or len(test_idx) == 0:
        raise ValueError("the dataset needs training and held-out runs")
    x = torch.from_numpy(normalise(data.images))[:, None]
    phase = torch.from_numpy(data.phase.astype(np.int64))
    merger = torch.from_numpy(data.merger.astype(np.float32))
    counts = np.bincount(data.phase[train_idx], minlength=len(PHASES)).astype(float)
    class_weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(PHASES), dtype=torch.float32).to(device)
    positive = max(float(data.merger[train_idx].mean()), 1e-3)
    merger_weight = torch.tensor((1 - positive) / positive, dtype=torch.float32).clamp(1.0, 20.0).to(device)
    model = PhenomenaCNN(tuple(cfg.channels), cfg.hidden).to(device).to(memory_format=torch.channels_last)

    def batch_loss(b):
        with autocast(device):
            logits, merger_logit = model(
                random_views(x[b], generator).contiguous(memory_format=torch.channels_last).to(device)
            )
        return F.cross_entropy(logits.float(), phase[b].to(device), weight=class_weight) + (
            F.binary_cross_entropy_with_logits(merger_logit.float(), merger[b].to(device), pos_weight=merger_weight)
        )

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
        "model_args": {"channels": list(cfg.channels), "hidden": cfg.hidden},
        "phases": list(PHASES),
        "config": asdict(cfg),
        "step": cfg.epochs,
    }
    p_phase, p_merger = predict(checkpoint, data.images[test_idx], device=device, model=model)
    baseline = RedshiftBaseline(
        data.redshift[train_idx], data.phase[train_idx], data.merger[train_idx], cfg.baseline_bandwidth
    )
    b_phase, b_merger = baseline.predict(data.redshift[test_idx])
    truth_phase, truth_merger = data.phase[test_idx], data.merger[test_idx]
    snapshots = data.snapshot[test_idx]
    metrics = {
        "n_train_runs": int(len(np.unique(data.run[train_idx]))),
        "n_test_runs": int(len(np.unique(data.run[test_idx]))),
        "test_runs": sorted({data.run_names[i] for i in np.unique(data.run[test_idx])}),
        "n_test_images": int(len(test_idx)),
        "model": classification_metrics(p_phase, p_merger, truth_phase, truth_merger, snapshots),
        "redshift_baseline": classification_metrics(b_phase, b_merger, truth_phase, truth_merger, snapshots),
        "train_seconds": round(reporter.seconds, 1),
    }
    metrics["score"] = _score(metrics["model"]["per_image"])
    metrics["baseline_score"] = _score(metrics["redshift_baseline"]["per_image"])
    evaluation = {
        "image_ids": data.image_ids[test_idx],
        "snapshot": snapshots,
        "redshift": data.redshift[test_idx],
        "phase": truth_phase,
        "merger": truth_merger,
        "model_phase": p_phase.astype(np.float32),
        "model_merger": p_merger.astype(np.float32),
        "baseline_phase": b_phase.astype(np.float32),
        "baseline_merger": b_merger.astype(np.float32),
    }
    return TrainResult(
        checkpoint=checkpoint,
        metrics=metrics,
        input_ranges=input_ranges(data.images[train_idx]),
        device=device.type,
        history=reporter.history,
        evaluation=evaluation,
    )


def _score(m: dict) -> float:
    """The promotion metric: the mean of the phase macro ROC AUC and the merger ROC AUC."""
    values = [v for v in (m["phase_auc_macro"], m["merger_auc"]) if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _metrics(p_phase: np.ndarray, p_merger: np.ndarray, phase: np.ndarray, merger: np.ndarray) -> dict:
    aucs = {name: roc_auc(p_phase[:, k], phase == k) for k, name in enumerate(PHASES)}
    finite = [v for v in aucs.values() if math.isfinite(v)]
    return {
        "n": int(len(phase)),
        "phase_accuracy": float((p_phase.argmax(axis=1) == phase).mean()),
        "phase_auc": aucs,
        "phase_auc_macro": float(np.mean(finite)) if finite else None,
        "merger_accuracy": float(((p_merger >= 0.5) == merger.astype(bool)).mean()),
        "merger_auc": roc_auc(p_merger, merger.astype(bool)),
    }


def classification_metrics(p_phase, p_merger, phase, merger, snapshot) -> dict:
    """Accuracy and ROC AUC per image, and per snapshot (probabilities averaged over cameras)."""
    per_image = _metrics(p_phase, p_merger, phase, merger)
    keys, inverse = np.unique(snapshot, return_inverse=True)
    counts = np.bincount(inverse).astype(float)
    mean_phase = (
        np.stack([np.bincount(inverse, weights=p_phase[:, k]) for k in range(len(PHASES))], axis=1) / counts[:, None]
    )
    mean_merger = np.bincount(inverse, weights=p_merger) / counts
    first = np.array([np.flatnonzero(inverse == i)[0] for i in range(len(keys))])
    per_snapshot = _metrics(mean_phase, mean_merger, phase[first], merger[first])
    return {"per_image": per_image, "per_snapshot": per_snapshot}


def load_model(checkpoint: dict, device: torch.device) -> PhenomenaCNN:
    args = checkpoint["model_args"]
    model = PhenomenaCNN(tuple(args["channels"]), args["hidden"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).to(memory_format=torch.channels_last).eval()


def predict(
    checkpoint: dict, images: np.ndarray, *, device=None, model: PhenomenaCNN | None = None, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """(P(phase) (n, 3) in PHASES order, P(recent merger) (n,))."""
    device = device or pick_device()
    model = model or load_model(checkpoint, device)
    model.eval()
    x = torch.from_numpy(normalise(images))[:, None]
    phases, mergers = [], []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device).contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits, merger_logit = model(xb)
            phases.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
            mergers.append(torch.sigmoid(merger_logit.float()).cpu().numpy())
    if not phases:
        return np.zeros((0, len(PHASES)), np.float32), np.zeros(0, np.float32)
    return np.concatenate(phases), np.concatenate(mergers)
