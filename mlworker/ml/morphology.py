"""Morphology: a CNN that reproduces the experts' vote fractions from cutouts (no Django).

Targets are vote COUNTS, question by question, with the output size taken from the scheme:

- a multiple-choice question (the CANDELS main class, structure flags): answer k was chosen
  by c_k of the n classifiers who saw the question; the network predicts a fraction p_k and a
  concentration kappa_k per answer and the loss is the beta-binomial likelihood of c_k;
- a single-choice question (the CANDELS interaction class, every Galaxy Zoo question): the
  counts of its answers follow a Dirichlet-multinomial with mean softmax(logits) and one
  concentration, n = the votes that reached the question (Zoobot's loss); a question nobody
  reached adds nothing.

So galaxies with few votes weigh less, and every prediction comes with a predictive
uncertainty: the standard deviation of the fraction a fresh crowd of n classifiers would give,
sqrt(p (1 - p) / n * (n + kappa) / (1 + kappa)), n being the typical votes per galaxy.
Test-time augmentation averages the 8 rotations and flips (the spread across views adds to
the variance).
"""

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlworker.ml.common import EpochReporter, TrainResult
from mlworker.ml.device import autocast, pick_device
from mlworker.ml.imaging import (  # noqa: F401 - re-exported: the morphology model's preprocessing
    STAT_NAMES,
    ApertureSNR,
    conv_trunk,
    eight_views,
    input_ranges,
    input_statistics,
    normalise,
    out_of_distribution,
    pooled,
)


@dataclass
class MorphologyConfig:
    image_size: int = 64
    channels: tuple[int, ...] = (24, 48, 64, 96)
    hidden: int = 96
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    augment: bool = True
    # Label-preserving augmentation only (README, "Morphology"): the 8 rotations/flips always.
    # The experts' answers depend on a galaxy's apparent size and S/N, and cutouts are centred
    # on the catalogue position, so zoom and shifts are off by default: a bilinear zoom also
    # smooths the pixel noise (training images then look cleaner than the ones predicted, which
    # biased the fractions by up to 0.05), and off-centre training galaxies cost the aperture
    # branch its meaning. A little extra noise (at most +4% in quadrature) regularises.
    max_shift_px: int = 0  # whole-pixel shifts (exact: the noise stays as observed)
    max_zoom: float = 0.0  # zoom factor in exp(+-max_zoom), bilinear
    max_extra_noise: float = 0.3  # extra Gaussian noise, in units of the image's own noise
    tta: bool = False  # predict with the 8 rotations/flips by default
    seed: int = 0


@dataclass(frozen=True)
class Question:
    key: str
    kind: str  # "single" (one answer per vote) or "multiple" (any number per vote)
    start: int  # answers[start:stop] belong to it
    stop: int


@dataclass
class MorphologyData:
    """A packed dataset export.

    images (n, H, W) float32; counts (n, K) votes per answer; trials (n, Q) votes that reached
    each question; n_votes (n,) votes per galaxy; mags (n,) AB magnitude (NaN if unknown);
    answers: the K "question:answer" keys, grouped by question in ``questions``.
    """

    images: np.ndarray
    counts: np.ndarray
    trials: np.ndarray
    n_votes: np.ndarray
    galaxy_ids: np.ndarray
    is_test: np.ndarray
    answers: list[str]
    questions: list[Question]
    mags: np.ndarray

    @classmethod
    def single_question(cls, images, counts, n_votes, galaxy_ids, is_test, answers, kind="multiple", mags=None):
        """A dataset of one question whose every answer was offered to every classifier."""
        n_votes = np.asarray(n_votes)
        return cls(
            images=images,
            counts=np.asarray(counts),
            trials=n_votes[:, None].copy(),
            n_votes=n_votes,
            galaxy_ids=np.asarray(galaxy_ids),
            is_test=np.asarray(is_test),
            answers=list(answers),
            questions=[Question(answers[0].split(":")[0], kind, 0, len(answers))],
            mags=np.full(len(n_votes), np.nan) if mags is None else np.asarray(mags, dtype=float),
        )

    @classmethod
    def load(cls, path) -> "MorphologyData":
        with np.load(path, allow_pickle=False) as f:
            starts = f["question_starts"]
            return cls(
                images=f["images"],
                counts=f["counts"],
                trials=f["trials"],
                n_votes=f["n_votes"],
                galaxy_ids=f["galaxy_ids"],
                is_test=f["is_test"],
                answers=[str(a) for a in f["answers"]],
                questions=[
                    Question(str(k), str(kind), int(a), int(b))
                    for k, kind, a, b in zip(
                        f["question_keys"], f["question_kinds"], starts[:-1], starts[1:], strict=True
                    )
                ],
                mags=f["mags"],
            )

    def save(self, path) -> None:
        np.savez(
            path,
            images=self.images,
            counts=self.counts,
            trials=self.trials,
            n_votes=self.n_votes,
            galaxy_ids=self.galaxy_ids,
            is_test=self.is_test,
            answers=np.asarray(self.answers),
            question_keys=np.asarray([q.key for q in self.questions]),
            question_kinds=np.asarray([q.kind for q in self.questions]),
            question_starts=np.asarray([q.start for q in self.questions] + [self.questions[-1].stop]),
            mags=self.mags,
        )

    def human_fractions(self) -> np.ndarray:
        """(n, K): votes for an answer / votes that reached its question (0 where none did)."""
        trials = self.answer_trials()
        return np.divide(self.counts, trials, out=np.zeros(trials.shape), where=trials > 0)

    def answer_trials(self) -> np.ndarray:
        """(n, K): the votes that reached each answer's question."""
        out = np.zeros(self.counts.shape, dtype=float)
        for j, q in enumerate(self.questions):
            out[:, q.start : q.stop] = self.trials[:, j : j + 1]
        return out


# ---- the network -------------------------------------------------------------------------
APERTURE_RADII_PX = (1.5, 3.0, 5.0, 8.0, 12.0, 18.0, 26.0)


class MorphologyCNN(nn.Module):
    """Two branches into one head:

    - conv blocks (conv-BN-ReLU, 2x2 max pool) -> [global mean, global max];
    - aperture photometry: the light (in units of the sky noise) within circles of
      APERTURE_RADII_PX around the stamp centre, as S/N in each aperture. Faint galaxies'
      classifications hinge on their S/N and size, which a small CNN trained on a few
      thousand galaxies measures poorly; these sums give them exactly (and rotate with nothing).

    -> dense -> (logit, log concentration) per answer.
    """

    def __init__(
        self, n_answers: int, channels: tuple[int, ...] = (24, 48, 64, 96), hidden: int = 96, image_size: int = 64
    ):
        super().__init__()
        self.features = conv_trunk(channels)
        self.apertures = ApertureSNR(APERTURE_RADII_PX, image_size)
        self.photometry = nn.Sequential(nn.Linear(len(APERTURE_RADII_PX), 32), nn.ReLU(inplace=True))
        self.head = nn.Sequential(
            nn.Linear(2 * channels[-1] + 32, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.2),
            nn.Linear(hidden, 2 * n_answers),
        )
        self.n_answers = n_answers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(torch.cat([pooled(self.features(x)), self.photometry(self.apertures(x))], dim=1))
        logits, log_kappa = out[:, : self.n_answers], out[:, self.n_answers :]
        return logits, log_kappa.clamp(-3, 8)


def fractions_from_logits(logits: torch.Tensor, questions: list[Question]) -> torch.Tensor:
    """Sigmoid per answer of a multiple-choice question, softmax over a single-choice one's."""
    parts = []
    for q in questions:
        part = logits[:, q.start : q.stop]
        parts.append(torch.softmax(part, dim=1) if q.kind == "single" else torch.sigmoid(part))
    return torch.cat(parts, dim=1)


def concentrations(log_kappa: torch.Tensor, questions: list[Question]) -> torch.Tensor:
    """Per answer; a single-choice question shares one (the mean of its answers' outputs)."""
    parts = []
    for q in questions:
        part = log_kappa[:, q.start : q.stop]
        if q.kind == "single":
            part = part.mean(dim=1, keepdim=True).expand_as(part)
        parts.append(part)
    return torch.exp(torch.cat(parts, dim=1))


def counts_nll(
    logits: torch.Tensor, log_kappa: torch.Tensor, counts: torch.Tensor, trials: torch.Tensor, questions: list[Question]
) -> torch.Tensor:
    """Mean over galaxies of the negative log likelihood of their vote counts, summed over
    questions: beta-binomial per answer (multiple choice), Dirichlet-multinomial per question
    (single choice). Constant terms in the counts are dropped."""
    p = fractions_from_logits(logits, questions).clamp(1e-4, 1 - 1e-4)
    kappa = concentrations(log_kappa, questions)
    total = torch.zeros(len(counts), device=counts.device)
    for j, q in enumerate(questions):
        c = counts[:, q.start : q.stop]
        n = trials[:, j : j + 1]
        a = p[:, q.start : q.stop] * kappa[:, q.start : q.stop]
        if q.kind == "single":
            a0 = a.sum(dim=1, keepdim=True)
            log_like = (torch.lgamma(a0) - torch.lgamma(n + a0)).squeeze(1) + (
                torch.lgamma(c + a) - torch.lgamma(a)
            ).sum(dim=1)
        else:
            k = kappa[:, q.start : q.stop]
            b = k - a
            log_like = (
                torch.lgamma(c + a) + torch.lgamma(n - c + b) - torch.lgamma(n + k) + torch.lgamma(k)
                - torch.lgamma(a) - torch.lgamma(b)
            ).sum(dim=1)  # fmt: skip
        total = total - log_like
    return total.mean()


def beta_binomial_nll(logits, log_kappa, counts, n) -> torch.Tensor:
    """The multiple-choice case alone: every answer offered to all n classifiers."""
    questions = [Question("q", "multiple", 0, logits.shape[1])]
    return counts_nll(logits, log_kappa, counts, n[:, None], questions)


# ---- augmentation ------------------------------------------------------------------------
def augment(x: torch.Tensor, generator: torch.Generator, cfg: MorphologyConfig) -> torch.Tensor:
    """Per image: a random one of the 8 rotations/flips and a whole-pixel shift (both exact),
    then, if configured, a small zoom (bilinear) and extra noise. ``x`` is normalised
    (asinh(image/3 sigma)); the shift wraps sky around the edges."""
    n = len(x)
    k = torch.randint(0, 4, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x)
    for kk in range(4):
        for ff in (False, True):
            sel = (k == kk) & (flip == ff)
            if sel.any():
                view = torch.rot90(x[sel], kk, dims=(2, 3))
                out[sel] = torch.flip(view, dims=(3,)) if ff else view
    shift = int(cfg.max_shift_px)
    if shift > 0:
        dy, dx = torch.randint(-shift, shift + 1, (2, n), generator=generator).tolist()
        out = torch.stack([torch.roll(out[i], (dy[i], dx[i]), dims=(1, 2)) for i in range(n)])
    if cfg.max_zoom > 0:
        zoom = torch.exp((torch.rand(n, generator=generator) * 2 - 1) * cfg.max_zoom)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
        grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
        linear = torch.sinh(out) * 3  # resample in linear flux units, not in asinh
        out = torch.asinh(F.grid_sample(linear, grid, mode="bilinear", padding_mode="border", align_corners=False) / 3)
    if cfg.max_extra_noise > 0:
        amp = torch.rand(n, 1, 1, 1, generator=generator) * cfg.max_extra_noise
        noise = torch.randn(x.shape, generator=generator).to(x.device) * amp.to(x.device)
        out = torch.asinh(torch.sinh(out) + noise / 3)
    return out.contiguous(memory_format=torch.channels_last)


# ---- metrics ------------------------------------------------------------------------------
def fraction_metrics(pred: np.ndarray, human: np.ndarray, answers: list[str], main: Question) -> dict:
    """Per answer: bias (mean model - human), scatter (std of the difference), RMSE; and the
    primary metric ``rmse`` over the main question's answers."""
    diff = pred - human
    per = {
        a: {
            "bias": float(diff[:, j].mean()),
            "scatter": float(diff[:, j].std()),
            "rmse": float(np.sqrt((diff[:, j] ** 2).mean())),
        }
        for j, a in enumerate(answers)
    }
    main_diff = diff[:, main.start : main.stop]
    return {"per_answer": per, "rmse": float(np.sqrt((main_diff**2).mean())), "n_test": int(len(pred))}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3:
        return float("nan")
    return float(spearmanr(a, b).statistic)


# ---- training -----------------------------------------------------------------------------
def _tensors(data: MorphologyData, device):
    x = torch.from_numpy(normalise(data.images))[:, None]
    counts = torch.from_numpy(data.counts.astype(np.float32))
    trials = torch.from_numpy(data.trials.astype(np.float32))
    return x, counts, trials


def train(cfg: MorphologyConfig, data: MorphologyData, progress: Callable[[dict], bool] | None = None) -> TrainResult:
    """Trains on the non-test galaxies, evaluates it and the baselines on the held-out ones.
    ``progress`` gets {epoch, n_epochs, loss, eta_seconds} after each epoch and returns False
    to cancel."""
    from mlworker.ml import baselines

    torch.manual_seed(cfg.seed)
    device = pick_device()
    generator = torch.Generator().manual_seed(cfg.seed)
    x, counts, trials = _tensors(data, device)
    train_idx = np.flatnonzero(~data.is_test)
    test_idx = np.flatnonzero(data.is_test)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise ValueError("the dataset needs both training and held-out galaxies")
    questions = data.questions
    model = MorphologyCNN(len(data.answers), tuple(cfg.channels), cfg.hidden, cfg.image_size).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=max(1, cfg.epochs * steps_per_epoch), pct_start=0.2
    )
    reporter = EpochReporter(cfg.epochs, progress)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total, seen = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            if len(batch) < 2:
                continue  # batch norm needs two
            xb = x[batch]
            xb = augment(xb, generator, cfg) if cfg.augment else xb.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits, log_kappa = model(xb.to(device))
            loss = counts_nll(
                logits.float(), log_kappa.float(), counts[batch].to(device), trials[batch].to(device), questions
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        reporter.epoch_done(epoch, total / max(seen, 1))
    checkpoint = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_args": {
            "n_answers": len(data.answers),
            "channels": list(cfg.channels),
            "hidden": cfg.hidden,
            "image_size": cfg.image_size,
        },
        "answers": data.answers,
        "questions": [asdict(q) for q in questions],
        "typical_votes": float(np.median(data.n_votes[train_idx])),
        "config": asdict(cfg),
        "step": cfg.epochs,
    }
    train_seconds = reporter.seconds
    history = reporter.history
    fractions, sigma = predict(checkpoint, data.images[test_idx], device=device, model=model, tta=cfg.tta)
    human = data.human_fractions()
    main = questions[0]
    metrics = fraction_metrics(fractions, human[test_idx], data.answers, main)
    metrics["final_train_loss"] = history[-1]["loss"] if history else None
    metrics["train_seconds"] = round(train_seconds, 1)
    metrics["tta"] = bool(cfg.tta)
    abs_err = np.abs(fractions - human[test_idx])[:, main.start : main.stop]
    unc = sigma[:, main.start : main.stop]
    metrics["uncertainty_spearman"] = {
        "per_galaxy": spearman(unc.mean(axis=1), abs_err.mean(axis=1)),
        "per_answer": spearman(unc.ravel(), abs_err.ravel()),
    }
    fitted = baselines.fit_all(data, train_idx)
    baseline_predictions = {name: b.predict(data.images[test_idx]) for name, b in fitted.items()}
    metrics["baselines"] = {
        name: fraction_metrics(pred, human[test_idx], data.answers, main) for name, pred in baseline_predictions.items()
    }
    evaluation = {
        "galaxy_ids": data.galaxy_ids[test_idx],
        "mags": data.mags[test_idx],
        "counts": data.counts[test_idx],
        "trials": data.trials[test_idx],
        "n_votes": data.n_votes[test_idx],
        "human": human[test_idx].astype(np.float32),
        "model": fractions.astype(np.float32),
        "model_sigma": sigma.astype(np.float32),
        **{f"baseline_{name}": pred.astype(np.float32) for name, pred in baseline_predictions.items()},
        "answers": np.asarray(data.answers),
        "main": np.array([main.start, main.stop]),
    }
    return TrainResult(
        checkpoint=checkpoint,
        metrics=metrics,
        input_ranges=input_ranges(data.images[train_idx]),
        device=device.type,
        history=history,
        evaluation=evaluation,
    )


# ---- inference ----------------------------------------------------------------------------
def load_model(checkpoint: dict, device: torch.device) -> MorphologyCNN:
    args = checkpoint["model_args"]
    model = MorphologyCNN(args["n_answers"], tuple(args["channels"]), args["hidden"], args.get("image_size", 64))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).to(memory_format=torch.channels_last).eval()


def checkpoint_questions(checkpoint: dict) -> list[Question]:
    return [Question(**q) for q in checkpoint["questions"]]


def predict(
    checkpoint: dict,
    images: np.ndarray,
    device: torch.device | None = None,
    batch_size: int = 64,
    model: MorphologyCNN | None = None,
    tta: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(fractions (n, K), sigma (n, K)): sigma is the standard deviation of the fraction a
    fresh crowd would give; with ``tta`` the 8 rotations/flips are averaged and their spread
    added in quadrature."""
    device = device or pick_device()
    model = model or load_model(checkpoint, device)
    model.eval()
    questions = checkpoint_questions(checkpoint)
    n_typ = float(checkpoint.get("typical_votes", 5.0))
    x = torch.from_numpy(normalise(images))[:, None]
    k = checkpoint["model_args"]["n_answers"]
    fractions, sigma = np.zeros((len(x), k), np.float32), np.zeros((len(x), k), np.float32)
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device).contiguous(memory_format=torch.channels_last)
            views = eight_views(xb) if tta else [xb]
            with autocast(device):
                outs = [model(v.contiguous(memory_format=torch.channels_last)) for v in views]
            ps = torch.stack([fractions_from_logits(lo.float(), questions) for lo, _ in outs])
            kappas = torch.stack([concentrations(lk.float(), questions) for _, lk in outs])
            p = ps.mean(dim=0)
            var = (ps * (1 - ps) / n_typ * (n_typ + kappas) / (1 + kappas)).mean(dim=0) + ps.var(dim=0, correction=0)
            fractions[start : start + len(xb)] = p.cpu().numpy()
            sigma[start : start + len(xb)] = var.sqrt().cpu().numpy()
    return fractions, sigma


def main_uncertainty(checkpoint: dict, sigma: np.ndarray) -> np.ndarray:
    """One number per galaxy: the mean sigma over the main (first) question's answers."""
    main = checkpoint_questions(checkpoint)[0]
    return sigma[:, main.start : main.stop].mean(axis=1)
