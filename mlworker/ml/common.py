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
