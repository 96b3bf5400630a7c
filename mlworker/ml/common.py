"""What every model family's training shares (no Django): its result and its progress reports."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TrainResult:
    checkpoint: dict
    metrics: dict
    input_ranges: dict
    device: str
    history: list[dict] = field(default_factory=list)
    evaluation: dict = field(default_factory=dict)  # held-out arrays, stored beside the version


class EpochReporter:
    """Builds the {epoch, n_epochs, loss, eta_seconds} entry after each epoch, keeps the
    history and raises InterruptedError when ``progress`` returns False (cancelled)."""

    def __init__(self, n_epochs: int, progress: Callable[[dict], bool] | None):
        self.n_epochs, self.progress = n_epochs, progress
        self.history: list[dict] = []
        self.started = time.perf_counter()

    def epoch_done(self, epoch: int, mean_loss: float) -> None:
        elapsed = time.perf_counter() - self.started
        entry = {
            "epoch": epoch,
            "n_epochs": self.n_epochs,
            "loss": mean_loss,
            "eta_seconds": elapsed / epoch * (self.n_epochs - epoch),
        }
        self.history.append(entry)
        if self.progress is not None and self.progress(entry) is False:
            raise InterruptedError("training cancelled")

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def fit_one_cycle(
    model,
    train_idx,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator,
    batch_loss: Callable,
    progress: Callable[[dict], bool] | None,
    pct_start: float = 0.2,
) -> EpochReporter:
    """AdamW under a one-cycle learning rate over shuffled mini-batches of ``train_idx``
    (a numpy index array; a last batch of one is skipped: batch norm needs two);
    ``batch_loss(indices)`` returns the batch's scalar loss. Reports after every epoch."""
    import math

    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, epochs * math.ceil(len(train_idx) / batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=pct_start)
    reporter = EpochReporter(epochs, progress)
    for epoch in range(1, epochs + 1):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total, seen = 0.0, 0
        for start in range(0, len(order) - 1, batch_size):
            b = order[start : start + batch_size]
            loss = batch_loss(b)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(b)
            seen += len(b)
        reporter.epoch_done(epoch, total / max(seen, 1))
    return reporter
