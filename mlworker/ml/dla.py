"""The DLA finder: the multi-task 1-D CNN of Parks et al. 2018 on quasar sightlines (no Django).

A sightline lives on the SDSS grid (log10 lambda = i * 1e-4). Its flux is divided by a
continuum estimate (a power law through line-free windows red-ward of Lyman alpha), so flux
units and already-normalised spectra give the same input. The scan covers rest-frame
900-1346 A: 1748 pixels, each the centre of a 400-pixel window; the network answers, per
window, whether an absorber lies within +-60 pixels of its centre, the offset to that centre
and log N(HI). Its FC layer also reads where the window lies (the Ly-alpha redshift of its
centre and its rest wavelength in the quasar's frame): the forest's opacity, and so the odds
that a saturated stretch is a blend, grows steeply with redshift. Training keeps the whole run
within a wall-clock limit, fitting the number of epochs to the step time it measures.

Scanning runs the convolutional trunk once over the whole sightline (dilated, stride 1, so
every window's activations come out of the same pass) and recomputes, per window, only the
activations that touch the window's own "SAME" zero padding: the result equals the windowed
network (``scan_windowed``) to float32 rounding. Post-processing turns the window outputs
into absorbers: each positive window votes for its centre + offset, the smoothed votes peak
at absorbers, log N(HI) is the mean of the column-density head over +-30 pixels, peaks at
another absorber's Lyman-beta position and weaker are flagged, and a peak with significant flux
below its own Lyman limit is dropped (the Lyman-limit veto: no absorber of log N >= 17.2 lets
light through there).
"""

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlworker.ml.common import EpochReporter, TrainResult
from mlworker.ml.continuum import continuum_estimate
from mlworker.ml.device import autocast, pick_device

LOGLAM_STEP = 1e-4
LYA, LYB = 1215.67, 1025.72
SCAN_REST = (900.0, 1346.0)
N_SCAN = 1748  # window centres per sightline: rest 900-1346 A on the 1e-4 grid
WINDOW = 400
HALF = WINDOW // 2
PADDED = N_SCAN + WINDOW  # the scan input: 200 pixels either side of the scanned range
POSITIVE_PX = 60  # a window is positive when an absorber lies within +-60 pixels of its centre
BORDER_PX = 80  # centres 60-80 pixels from an absorber are neither positive nor negative
MIN_POSITIVE_LOGN = 19.5  # sub-DLAs and DLAs are positives; weaker systems are "ignored"
MIN_LABELLED_LOGN = 19.3
DLA_LOGN = 20.3
MATCH_DZ = 0.015
LL_FLOOR, LL_SIGMA = 0.1, 5.0  # the Lyman-limit veto's defaults (DLAConfig)
PROXIMITY_KMS = 3000.0  # absorbers closer to the quasar are not searched for (proximate systems)
C_KMS = 299_792.458


@dataclass
class DLAConfig:
    train_sightlines: int = 24000  # distinct forests matter more than windows (README)
    test_sightlines: int = 600
    # of the train_sightlines, this many (at most 10%) calibrate log N(HI) and are not trained on
    validation_sightlines: int = 800
    dla_boost: float = 6.0  # absorber incidence in the training mocks, relative to the real one
    inserted_copies: int = 2  # sightlines marked DLA-free: training copies of each, with DLAs inserted
    max_dla_free: int = 5000  # at most this many DLA-free sightlines are used
    epochs: int = 50
    windows_per_epoch: int = 100_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    dropout: float = 0.1
    offset_weight: float = 1.0  # the offset loss is in units of 60 pixels
    column_weight: float = 5.0  # the log N(HI) loss is in dex
    vote_threshold: float = 0.2
    seed: int = 0
    # bfloat16 autocast for training on CPUs with native bfloat16 (2x the windows per second on
    # this machine's AMX); weights, losses and the optimizer stay float32, scanning stays float32
    cpu_bf16: bool = True
    # Hard negatives: from ``hard_negative_start`` of the epochs on, every ``hard_negative_every``
    # epochs, the model scans ``hard_negative_sightlines`` training sightlines and the negative
    # windows it calls >= ``hard_negative_threshold`` (saturated forest blends, mostly at high
    # z_qso) make up ``hard_negative_fraction`` of each batch's negatives. Off by default: at 0.3
    # it left the false DLAs of bench/acceptance_dla.py where they were (20.8% against 19.9%).
    hard_negative_fraction: float = 0.0
    hard_negative_start: float = 0.33
    hard_negative_every: int = 8
    hard_negative_sightlines: int = 800
    hard_negative_threshold: float = 0.3
    # Negatives drawn with weight tau_eff(z)^p, z the Ly-alpha redshift of the window's centre
    # (capped at z_qso): p > 0 shows the network more windows of dense (high-z) forest, where
    # its false DLAs are. 0 draws them uniformly.
    negative_forest_power: float = 0.0
    # Lyman-limit veto: an absorber with log N >= 17.2 is opaque below its 912 A, so a candidate
    # whose continuum-normalised flux at rest 860-905 A is above ``lyman_limit_floor`` and
    # ``lyman_limit_sigma`` times its error is dropped (forest blends at high z_qso, mostly).
    # It needs >= LL_MIN_PIXELS good pixels there; where the IGM or a higher Lyman-limit system
    # has already blacked the spectrum out, nothing is vetoed.
    lyman_limit_veto: bool = True
    lyman_limit_floor: float = LL_FLOOR
    lyman_limit_sigma: float = LL_SIGMA
    # FC 350 also reads where each window lies (window_context: its Ly-alpha redshift and rest
    # wavelength in the quasar's frame), so that the same saturated stretch can weigh
    # differently in the thin forest at z = 2.5 and the dense one at z = 4.3
    window_context: bool = True
    # The whole training run (dataset, epochs, calibration and held-out scan) within this many
    # seconds of wall clock: before the first epoch the training step is timed on this machine
    # and, where ``epochs`` would overrun, fewer epochs run (the one-cycle schedule fitted to
    # them; the metrics record ``epochs_run``). CPUs differ: an AMX Xeon runs all 50 epochs in
    # 30 minutes, a Zen 4 EPYC (AVX512-BF16) 48, an EPYC with AVX2 alone 10. 0: always ``epochs``.
    time_limit_s: float = 1800.0


# ---- continuum and scan input -------------------------------------------------------------
def scan_start(z_qso: float) -> int:
    """Grid index of the first scanned pixel (rest 900 A)."""
    return int(math.ceil(math.log10(SCAN_REST[0] * (1.0 + z_qso)) / LOGLAM_STEP - 1e-9))


def scan_input(
    start_index: int, flux: np.ndarray, ivar: np.ndarray, z_qso: float, continuum: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(x, covered): the continuum-normalised flux over the scan plus 200 pixels either side,
    shape (2148,), zero outside the observed range, masked pixels interpolated from their
    neighbours; ``covered`` (1748,) is True for window centres with data. ``continuum``: the
    sightline's ``continuum_estimate`` when the caller has it already."""
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    if continuum is None:
        continuum = continuum_estimate(start_index, flux, ivar, z_qso)
    norm = flux / continuum
    good = (ivar > 0) & np.isfinite(norm)
    if good.sum() >= 2 and not good.all():
        idx = np.arange(norm.size)
        norm = np.where(good, norm, np.interp(idx, idx[good], norm[good]))
    elif not good.any():
        norm = np.zeros_like(norm)
    norm = np.clip(norm, -2.0, 4.0)
    first = scan_start(z_qso) - HALF
    x = np.zeros(PADDED, dtype=np.float32)
    lo = max(first, start_index)
    hi = min(first + PADDED, start_index + flux.size)
    if hi > lo:
        x[lo - first : hi - first] = norm[lo - start_index : hi - start_index]
    centres = scan_start(z_qso) + np.arange(N_SCAN)
    covered = (centres >= start_index) & (centres < start_index + flux.size)
    return x, covered


LL_REST = (860.0, 905.0)  # rest-frame range below a candidate's Lyman limit that the veto reads
LL_MIN_PIXELS = 30


def lyman_limit_flux(
    start_index: int, flux: np.ndarray, ivar: np.ndarray, z_qso: float, continuum: np.ndarray | None = None
) -> np.ndarray:
    """(2, 1748) float32: for a candidate at each scanned pixel, the mean continuum-normalised
    flux of the good pixels at rest 860-905 A in the candidate's frame, and its error (NaN for
    both with fewer than LL_MIN_PIXELS good pixels there). The range is a fixed offset on the
    log grid, so cumulative sums give every candidate at once. ``continuum`` as in scan_input."""
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    if continuum is None:
        continuum = continuum_estimate(start_index, flux, ivar, z_qso)
    good = (ivar > 0) & np.isfinite(flux) & (continuum > 0)
    norm = np.where(good, flux / np.where(continuum > 0, continuum, 1.0), 0.0)
    var = np.where(good, 1.0 / (np.where(good, ivar, 1.0) * continuum**2), 0.0)
    csum = [np.concatenate([[0.0], np.cumsum(a)]) for a in (good.astype(float), norm, var)]
    lo_off = math.ceil(math.log10(LL_REST[0] / LYA) / LOGLAM_STEP)
    hi_off = math.floor(math.log10(LL_REST[1] / LYA) / LOGLAM_STEP)
    centres = scan_start(z_qso) + np.arange(N_SCAN) - start_index  # candidate pixels in the array
    lo = np.clip(centres + lo_off, 0, flux.size)
    hi = np.clip(centres + hi_off + 1, 0, flux.size)
    count, total, variance = (c[hi] - c[lo] for c in csum)
    enough = count >= LL_MIN_PIXELS
    safe = np.where(enough, count, 1.0)
    mean = np.where(enough, total / safe, np.nan)
    err = np.where(enough, np.sqrt(variance) / safe, np.nan)
    return np.stack([mean, err]).astype(np.float32)


def pixel_of(z_abs: float | np.ndarray, line: float = LYA) -> np.ndarray:
    """Grid position (fractional) of an absorber's line."""
    return np.log10(line * (1.0 + np.asarray(z_abs))) / LOGLAM_STEP


def z_of_pixel(pixel: float | np.ndarray) -> np.ndarray:
    return 10 ** (np.asarray(pixel) * LOGLAM_STEP) / LYA - 1.0


N_CONTEXT = 2  # where a window lies: its Ly-alpha redshift and its rest wavelength in the quasar's frame


def window_context(z_qso: float | np.ndarray, windows: np.ndarray | None = None) -> np.ndarray:
    """(..., N_CONTEXT) float32: for window ``windows`` (default: all 1748) of a sightline at
    ``z_qso``, 3 (ln(1 + z) - ln 4) with z the Ly-alpha redshift of its centre, and its centre's
    rest wavelength in the quasar's frame, (lambda - 1123 A) / 223 A (-1 to 1 over the scan).
    The forest's opacity grows as (1 + z)^3.9, so a saturated stretch that is likely an absorber
    at z = 2.5 is as likely a forest blend at z = 4.3; the window alone cannot tell where it is.
    ``z_qso`` (n,) with ``windows`` (n,) gives (n, 2); a scalar without ``windows`` (1748, 2);
    (n,) without ``windows`` (n, 1748, 2)."""
    z_qso = np.asarray(z_qso, dtype=np.float64)
    start = np.ceil(np.log10(SCAN_REST[0] * (1.0 + z_qso)) / LOGLAM_STEP - 1e-9)
    if windows is None:
        pixel = start[..., None] + np.arange(N_SCAN)
        zq = z_qso[..., None]
    else:
        pixel = start + np.asarray(windows)
        zq = z_qso
    wave = 10 ** (pixel * LOGLAM_STEP)
    z_lya = wave / LYA - 1.0
    rest = wave / (1.0 + zq)
    return np.stack([3.0 * (np.log1p(z_lya) - math.log(4.0)), (rest - 1123.0) / 223.0], -1).astype(np.float32)


# ---- labels --------------------------------------------------------------------------------
def window_labels(z_qso: float, covered: np.ndarray, z_abs: np.ndarray, log_nhi: np.ndarray) -> dict:
    """Per window centre: label 1 (absorber within 60 px), 0, or -1 (ignored: 60-80 px from
    an absorber, near a weak one, at a strong one's Lyman-beta, or no data); the offset
    (absorber pixel - centre) and log N(HI) of the nearest positive absorber."""
    centres = scan_start(z_qso) + np.arange(N_SCAN)
    label = np.where(covered, 0, -1).astype(np.int8)
    offset = np.zeros(N_SCAN, np.float32)
    column = np.zeros(N_SCAN, np.float32)
    best = np.full(N_SCAN, np.inf)
    for z, n in zip(np.atleast_1d(z_abs), np.atleast_1d(log_nhi), strict=True):
        if n < MIN_LABELLED_LOGN:
            continue
        d = pixel_of(z) - centres
        near = np.abs(d) <= BORDER_PX
        if n < MIN_POSITIVE_LOGN:
            label[near] = -1
            continue
        positive = (np.abs(d) <= POSITIVE_PX) & (np.abs(d) < best)
        label[near & ~positive & (label == 0)] = -1
        label[positive & covered] = 1
        offset[positive] = d[positive]
        column[positive] = n
        best[positive] = np.abs(d[positive])
        if n >= 20.0:  # its Lyman-beta line looks like an absorber: neither positive nor negative
            beta = np.abs(pixel_of(z, LYB) - centres) <= POSITIVE_PX
            label[beta & (label == 0)] = -1
    return {"label": label, "offset": offset, "log_nhi": column}


# ---- the network ---------------------------------------------------------------------------
# Layer geometry for a 400-pixel window with TensorFlow "SAME" padding (left = total // 2):
# conv1 k32 s3 -> 134; pool k7 s4 -> 34; conv2 k16 -> 34; pool k6 s4 -> 9; conv3 k16 -> 9;
# pool k6 s4 -> 3; 3 x 96 = 288 features -> FC 350 -> three heads.
_PAD_C1, _PAD_P1, _PAD_C2, _PAD_P2, _PAD_C3, _PAD_P3 = (15, 16), (2, 3), (7, 8), (2, 2), (7, 8), (2, 3)


class DLANet(nn.Module):
    """Parks et al.'s network; with ``context``, FC 350 also reads the window's place
    (``window_context``: its Ly-alpha redshift and rest wavelength in the quasar's frame)."""

    def __init__(self, dropout: float = 0.1, context: bool = False):
        super().__init__()
        self.context = context
        self.conv1 = nn.Conv1d(1, 100, 32, stride=3)
        self.conv2 = nn.Conv1d(100, 96, 16)
        self.conv3 = nn.Conv1d(96, 96, 16)
        self.fc = nn.Linear(288 + (N_CONTEXT if context else 0), 350)
        self.drop = nn.Dropout(dropout)
        self.classify = nn.Linear(350, 1)
        self.offset = nn.Linear(350, 1)
        self.column = nn.Linear(350, 1)

    def p1(self, x: torch.Tensor) -> torch.Tensor:
        a1 = F.relu(self.conv1(F.pad(x, _PAD_C1)))  # (B, 100, 134)
        return F.max_pool1d(F.pad(a1, _PAD_P1), 7, 4)  # (B, 100, 34); zero padding = SAME after a ReLU

    def a2(self, p1: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.pad(p1, _PAD_C2)))  # (B, 96, 34)

    def head(
        self, a2: torch.Tensor, ctx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p2 = F.max_pool1d(F.pad(a2, _PAD_P2), 6, 4)  # (B, 96, 9)
        return self.tail(F.relu(self.conv3(F.pad(p2, _PAD_C3))), ctx)  # conv3: (B, 96, 9)

    def tail(
        self, a3: torch.Tensor, ctx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.tail_pooled(F.max_pool1d(F.pad(a3, _PAD_P3), 6, 4), ctx)  # (B, 96, 3)

    def tail_pooled(
        self, p3: torch.Tensor, ctx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = p3.flatten(1)
        if self.context:
            features = torch.cat([features, self._context(ctx, len(features)).to(features.dtype)], 1)
        return self.heads(self.drop(F.relu(self.fc(features))))  # (B, 350)

    def _context(self, ctx: torch.Tensor | None, n: int) -> torch.Tensor:
        if ctx is None or ctx.shape != (n, N_CONTEXT):
            raise ValueError(
                f"this network reads each window's place: ctx of shape ({n}, {N_CONTEXT}) (window_context)"
            )
        return ctx

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logit = self.classify(h)[:, 0]
        offset = POSITIVE_PX * self.offset(h)[:, 0]  # pixels
        log_nhi = 20.0 + self.column(h)[:, 0]
        return logit, offset, log_nhi

    def forward(
        self, x: torch.Tensor, ctx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, 400) windows (ctx: (B, N_CONTEXT) with ``context``) -> (logit, offset,
        log N(HI)), each (B,)."""
        return self.head(self.a2(self.p1(x[:, None])), ctx)


# ---- scanning ------------------------------------------------------------------------------
def _scan_context(model: DLANet, x: torch.Tensor, z_qso) -> torch.Tensor | None:
    """(B, 1748, N_CONTEXT) window places for a network that reads them, else None."""
    if not model.context:
        return None
    if z_qso is None:
        raise ValueError("this network reads each window's place: pass the sightlines' z_qso")
    z = np.atleast_1d(np.asarray(z_qso, dtype=np.float64))
    if z.shape != (len(x),):
        raise ValueError(f"z_qso: one redshift per sightline ({len(x)}), got shape {z.shape}")
    return torch.from_numpy(window_context(z)).to(device=x.device, dtype=x.dtype)


def scan_windowed(model: DLANet, x: torch.Tensor, z_qso=None, chunk: int = 512) -> tuple[torch.Tensor, ...]:
    """The baseline: all 1748 windows of each sightline (x: (B, 2148); z_qso (B,) for a
    network that reads window places) through the model in chunks of ``chunk``. Returns
    (prob, offset, log_nhi), each (B, 1748)."""
    ctx = _scan_context(model, x, z_qso)
    ctx = ctx.reshape(-1, N_CONTEXT) if ctx is not None else None
    windows = x.unfold(1, WINDOW, 1)[:, :N_SCAN].reshape(-1, WINDOW)  # (B * 1748, 400)
    outs = [
        model(windows[i : i + chunk], ctx[i : i + chunk] if ctx is not None else None)
        for i in range(0, len(windows), chunk)
    ]
    logit, offset, log_nhi = (torch.cat(parts).reshape(len(x), N_SCAN) for parts in zip(*outs, strict=True))
    return torch.sigmoid(logit), offset, log_nhi


# One pass. Positions below are window-relative (a window starts at pixel s of the scan input):
# conv1 output j reads pixels s - 15 + 3 j .. + 31; pool1 output m starts at conv1 j = 4 m - 2,
# i.e. at pixel s - 21 + 12 m; conv2 output n reads pool1 m = n - 7 .. n + 8; pool2 output k
# takes conv2 n = 4 k - 2 .. 4 k + 3. Pool1 outputs m = 2..30 and conv2 outputs n = 9..22 never
# touch the window's own padding: they are the same in every window and in a dilated,
# stride-1 pass over the sightline, so a window reads them at pass position s + const (a slice
# over all windows at once). Conv2 n = 0..8 and 23..33 are corrected per window: the pass's
# value less the taps that fall outside the window (pool1 m < 0 or > 33: prefix and suffix
# sums over the pass), plus the differences at pool1 m = 0, 1, 31..33, which the window
# computes from its own edge pixels. Pool2 k = 3, 4 and the clean parts of k = 2, 5, 6 are
# pooled once over the pass. The per-window work is five matrix products: conv1 at the two
# edges, the two conv2 corrections and conv3 (9 cells -> 9 cells).
_MARGIN = 128  # zeros either side for the pass, so that every pool1 tap a window can reach exists
_CORRECTED = [*range(9), *range(23, 34)]  # conv2 cells a window corrects


def _toeplitz(weight: torch.Tensor, inputs: range, outputs: range, pad_left: int, stride: int = 1) -> torch.Tensor:
    """(len(inputs) * C_in, len(outputs) * C_out) matrix of a convolution from the input
    positions to the output positions (channels last: row m * C_in + c, column n * C_out + o)."""
    c_out, c_in, k = weight.shape
    dev = weight.device
    tap = (
        torch.tensor(list(inputs), device=dev)[:, None]
        - stride * torch.tensor(list(outputs), device=dev)[None, :]
        + pad_left
    )
    valid = (tap >= 0) & (tap < k)
    w = weight.permute(2, 1, 0)[tap.clamp(0, k - 1)]  # (m, n, C_in, C_out)
    w = w * valid[:, :, None, None].to(w.dtype)
    return w.permute(0, 2, 1, 3).reshape(len(inputs) * c_in, len(outputs) * c_out)


def scan(model: DLANet, x: torch.Tensor, z_qso=None, sightline_chunk: int = 2) -> tuple[torch.Tensor, ...]:
    """Every window of every sightline (x: (B, 2148); z_qso (B,) for a network that reads
    window places) in one pass, equal to ``scan_windowed`` to float32 rounding; the per-window
    part runs ``sightline_chunk`` sightlines at a time. Returns (prob, offset, log_nhi), each
    (B, 1748)."""
    b, dev, dt = len(x), x.device, x.dtype
    ctx = _scan_context(model, x, z_qso)
    w1, b1, w2, b2 = model.conv1.weight, model.conv1.bias, model.conv2.weight, model.conv2.bias
    c1, c2 = w1.shape[0], w2.shape[0]
    # the pass, channels last: conv1 at stride 1, pool1 dilated by 3, conv2 dilated by 12
    a1 = torch.relu(F.pad(x, (_MARGIN, _MARGIN)).unfold(1, 32, 1) @ w1[:, 0].t() + b1)  # a1[u] reads u..u+31
    n1 = a1.shape[1] - 18
    p1 = a1[:, :n1].clone()
    for t in range(1, 7):
        torch.maximum(p1, a1[:, 3 * t : 3 * t + n1], out=p1)  # p1[u] = max_t a1[u + 3 t]
    y = (p1.reshape(-1, c1) @ w2.permute(1, 2, 0).reshape(c1, -1)).view(b, n1, 16, c2)  # every tap
    length = n1 - 180
    part = [y[:, 12 * i : 12 * i + length, i] for i in range(16)]  # tap i's term of conv2 at v
    lefts, rights = [part[0]], {15: part[15]}
    for i in range(1, 7):
        lefts.append(lefts[-1] + part[i])  # taps 0..i
    for i in range(14, 7, -1):
        rights[i] = rights[i + 1] + part[i]  # taps i..15
    z2 = lefts[6] + part[7] + rights[8] + b2  # conv2 before its ReLU: z2[v] reads p1[v + 12 i]
    fixed = {6 - i: z2 - lefts[i] for i in range(7)}  # n = 6 - i lacks taps 0..i (pool1 m < 0)
    fixed.update({41 - i: z2 - rights[i] for i in range(8, 16)})  # n = 41 - i lacks taps i..15 (m > 33)
    a2 = torch.relu(z2)
    q3 = torch.maximum(torch.maximum(a2[:, :-24], a2[:, 12:-12]), a2[:, 24:])  # max over n..n+2
    q5 = torch.maximum(torch.maximum(q3[:, :-24], a2[:, 36:-12]), a2[:, 48:])  # n..n+4
    p6 = torch.maximum(q5[:, :-12], a2[:, 60:])  # n..n+5: pool2
    t1_left = _toeplitz(w1, range(0, 41), range(0, 9), 15, stride=3)  # window pixels -> conv1 j = 0..8
    t1_right = _toeplitz(w1, range(351, 400), range(122, 134), 15, stride=3)  # -> j = 122..133
    t2_left = _toeplitz(w2, range(0, 2), range(0, 9), 7)  # pool1 m = 0, 1 reach conv2 n <= 8
    t2_right = _toeplitz(w2, range(31, 34), range(23, 34), 7)  # m = 31..33 reach n >= 23
    t3 = _toeplitz(model.conv3.weight, range(9), range(9), 7)  # conv3, (864, 864)
    b1_left, b1_right, b3 = b1.repeat(9), b1.repeat(12), model.conv3.bias.repeat(9)
    fc_pooled = model.fc.weight[:, : 3 * c2]  # the pooled features' columns; the window's place after them
    fc_weight = fc_pooled.reshape(-1, c2, 3).transpose(1, 2).reshape(-1, 3 * c2)  # channels-last input
    fc_context = model.fc.weight[:, 3 * c2 :]
    out = []
    for s0 in range(0, b, sightline_chunk):
        sl = slice(s0, min(s0 + sightline_chunk, b))
        nw = (sl.stop - sl.start) * N_SCAN

        def at(t: torch.Tensor, n: int, shift: int = -105, sl=sl) -> torch.Tensor:  # -> (windows, C)
            start = _MARGIN + shift + 12 * n  # pass position of cell n of window 0
            return t[sl, start : start + N_SCAN].flatten(0, 1)

        cells = torch.empty(nw, len(_CORRECTED), c2, device=dev, dtype=dt)  # conv2 n = 0..8, 23..33
        for j, n in enumerate(_CORRECTED):
            cells[:, j] = at(fixed.get(n, z2), n)
        xs = x[sl]
        left = torch.addmm(b1_left, xs.unfold(1, 41, 1)[:, :N_SCAN].reshape(nw, 41), t1_left).relu_().view(nw, 9, c1)
        right = torch.addmm(b1_right, xs[:, 351:].unfold(1, 49, 1)[:, :N_SCAN].reshape(nw, 49), t1_right)
        right = right.relu_().view(nw, 12, c1)
        # pool1 m = 0, 1 (conv1 j = 0..4, 2..8) and 31..33 (j = 122..128, 126..132, 130..133) as
        # the window computes them, less the pass's
        d_left = torch.stack([left[:, 0:5].amax(1) - at(p1, 0, -21), left[:, 2:9].amax(1) - at(p1, 1, -21)], 1)
        d_right = torch.stack(
            [
                right[:, 0:7].amax(1) - at(p1, 31, -21),
                right[:, 4:11].amax(1) - at(p1, 32, -21),
                right[:, 8:12].amax(1) - at(p1, 33, -21),
            ],
            1,
        )
        cells[:, :9] += (d_left.view(nw, -1) @ t2_left).view(nw, 9, c2)
        cells[:, 9:] += (d_right.view(nw, -1) @ t2_right).view(nw, 11, c2)
        cells.relu_()
        p2 = torch.empty(nw, 9, c2, device=dev, dtype=dt)  # pool2, from the cells and the pass
        p2[:, 0] = cells[:, 0:4].amax(1)  # n = 0..3
        p2[:, 1] = cells[:, 2:8].amax(1)  # n = 2..7
        p2[:, 2] = torch.maximum(cells[:, 6:9].amax(1), at(q3, 9))  # n = 6..8 | 9..11
        p2[:, 3] = at(p6, 10)  # n = 10..15
        p2[:, 4] = at(p6, 14)  # n = 14..19
        p2[:, 5] = torch.maximum(at(q5, 18), cells[:, 9])  # n = 18..22 | 23
        p2[:, 6] = torch.maximum(at(a2, 22), cells[:, 9:14].amax(1))  # n = 22 | 23..27
        p2[:, 7] = cells[:, 12:18].amax(1)  # n = 26..31
        p2[:, 8] = cells[:, 16:20].amax(1)  # n = 30..33
        a3 = torch.addmm(b3, p2.view(nw, -1), t3).relu_().view(nw, 9, c2)
        p3 = torch.stack([a3[:, 0:4].amax(1), a3[:, 2:8].amax(1), a3[:, 6:9].amax(1)], 1)  # pool3
        h = F.linear(p3.view(nw, -1), fc_weight, model.fc.bias)
        if ctx is not None:
            h = h + ctx[sl].reshape(nw, -1) @ fc_context.t()
        out.append(model.heads(torch.relu(h)))
    logit, offset, log_nhi = (torch.cat(parts).reshape(b, N_SCAN) for parts in zip(*out, strict=True))
    return torch.sigmoid(logit), offset, log_nhi


# ---- post-processing -----------------------------------------------------------------------
@dataclass
class Absorber:
    pixel: float  # grid position of the Lyman-alpha centre
    z_abs: float
    log_nhi: float
    log_nhi_err: float
    confidence: float
    kind: str  # "dla" or "subdla"
    lyman_beta: bool = False

    def as_dict(self) -> dict:
        return {
            "z_abs": round(self.z_abs, 5),
            "log_nhi": round(self.log_nhi, 3),
            "log_nhi_err": round(self.log_nhi_err, 3),
            "confidence": round(self.confidence, 3),
            "type": self.kind,
            "lyman_beta": self.lyman_beta,
            "pixel": round(self.pixel, 1),
        }


def absorbers_from_scan(
    z_qso: float,
    prob: np.ndarray,
    offset: np.ndarray,
    log_nhi: np.ndarray,
    covered: np.ndarray,
    threshold: float = 0.2,
    column_sigma: float = 0.0,
    column_shift: float = 0.0,
    lyman_limit: np.ndarray | None = None,
    veto: tuple[float, float] | None = (LL_FLOOR, LL_SIGMA),
) -> list[Absorber]:
    """Parks et al. post-processing for one sightline's 1748 windows: each window classified
    positive votes for its centre + offset; the votes, smoothed over +-4 pixels and scaled so
    that the ~121 windows of one absorber give 1, peak at absorbers (>= ``threshold``,
    separated by a dip to half the lower peak); confidence = min(1, peak); log N(HI) = mean of
    the column-density head over the voting windows within +-30 pixels of the peak (their spread
    with ``column_sigma`` from the validation set added in quadrature, and ``column_shift``,
    the validation set's mean error on DLAs, removed); peaks at least 60 pixels apart, on the
    search path (up to 3000 km/s short of the quasar); a peak within 15 A of a
    stronger one's Lyman-beta line (0.3 dex weaker) is flagged. With ``lyman_limit`` (from
    ``lyman_limit_flux``) and ``veto`` = (floor, n_sigma), a peak with flux below its Lyman limit
    above the floor and n_sigma errors is dropped: no absorber of log N >= 17.2 lets it through."""
    from scipy.signal import find_peaks

    voting = (prob >= 0.5) & covered
    n = len(prob)
    target = np.rint(np.arange(n) + offset).astype(int)
    keep = voting & (target >= 0) & (target < n)
    hist = np.bincount(target[keep], minlength=n).astype(float)
    smooth = np.convolve(hist, np.ones(9), mode="same") / (2 * POSITIVE_PX + 1)
    peaks, _ = find_peaks(
        np.concatenate([[0.0], smooth, [0.0]]), height=threshold, prominence=threshold / 2, distance=POSITIVE_PX
    )
    peaks = peaks - 1
    first = scan_start(z_qso)
    z_max = z_qso - PROXIMITY_KMS / C_KMS * (1.0 + z_qso)  # the search path ends short of the quasar
    found: list[Absorber] = []
    for k in peaks:
        near = keep & (np.abs(target - k) <= 4)
        centre = float(np.mean(target[near])) if near.any() else float(k)
        around = covered & (np.abs(np.arange(n) - centre) <= 30)
        if (around & voting).sum() >= 3:
            around &= voting
        values = log_nhi[around] if around.any() else log_nhi[[k]]
        col = float(np.mean(values)) + column_shift
        err = float(np.sqrt(np.var(values) + column_sigma**2))
        pixel = first + centre
        if z_of_pixel(pixel) > z_max:
            continue
        if lyman_limit is not None and veto is not None:
            at = int(np.clip(round(centre), 0, n - 1))
            below, below_err = float(lyman_limit[0, at]), float(lyman_limit[1, at])
            if np.isfinite(below) and below > max(veto[0], veto[1] * below_err):
                continue
        found.append(
            Absorber(
                pixel=pixel,
                z_abs=float(z_of_pixel(pixel)),
                log_nhi=col,
                log_nhi_err=err,
                confidence=float(min(1.0, smooth[k])),
                kind="dla" if col >= DLA_LOGN else "subdla",
            )
        )
    for a in found:
        for other in found:
            if other is a:
                continue
            beta = LYB * (1.0 + other.z_abs)
            if abs(LYA * (1.0 + a.z_abs) - beta) < 15.0 and a.log_nhi <= other.log_nhi - 0.3:
                a.lyman_beta = True
    return found


# ---- matching and metrics ------------------------------------------------------------------
def match_catalogs(predicted: list[tuple], truth: list[tuple], max_dz: float = MATCH_DZ) -> dict:
    """``predicted``: (sightline, z_abs, log_nhi, lyman_beta); ``truth``: (sightline, z_abs,
    log_nhi). Each true absorber takes the nearest unused prediction on its sightline with
    |dz| < max_dz (strongest truths first). Returns, per true absorber, the matched prediction
    index or -1, and per prediction whether it matched a true absorber with log N >= 20.0."""
    by_sightline: dict = {}
    for i, (sid, z, n, beta) in enumerate(predicted):
        if not beta:
            by_sightline.setdefault(sid, []).append((i, z, n))
    truth_match = np.full(len(truth), -1)
    used = set()
    for t in sorted(range(len(truth)), key=lambda j: -truth[j][2]):
        sid, z, _ = truth[t]
        best, best_dz = -1, max_dz
        for i, zp, _n in by_sightline.get(sid, []):
            dz = abs(zp - z)
            if i not in used and dz < best_dz:
                best, best_dz = i, dz
        if best >= 0:
            truth_match[t] = best
            used.add(best)
    matches_strong = np.zeros(len(predicted), dtype=bool)
    strong_by_sightline: dict = {}
    for sid, z, n in truth:
        if n >= 20.0:
            strong_by_sightline.setdefault(sid, []).append(z)
    for i, (sid, z, _n, _beta) in enumerate(predicted):
        matches_strong[i] = any(abs(z - zt) < max_dz for zt in strong_by_sightline.get(sid, []))
    return {"truth_match": truth_match, "prediction_matches_strong": matches_strong}


def _bootstrap(values: np.ndarray, stat, rng: np.random.Generator, n_boot: int = 500) -> list[float]:
    if len(values) < 2:
        return [float("nan"), float("nan")]
    idx = rng.integers(0, len(values), (n_boot, len(values)))
    boots = np.array([stat(values[i]) for i in idx])
    return [float(np.nanpercentile(boots, 2.5)), float(np.nanpercentile(boots, 97.5))]


def _none_for_nan(value):
    if isinstance(value, dict):
        return {k: _none_for_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_none_for_nan(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def catalog_metrics(predicted: list[tuple], truth: list[tuple], seed: int = 0) -> dict:
    """Completeness of true DLAs as absorber (matched by a prediction with log N >= 20.0) and
    as DLA (>= 20.3), the fraction of predicted DLAs that match no true absorber with
    log N >= 20.0, sigma(z) and sigma(log N) of the matched DLAs; bootstrap 95% intervals."""
    rng = np.random.default_rng(seed)
    m = match_catalogs(predicted, truth)
    dla_truth = np.array([t[2] >= DLA_LOGN for t in truth], dtype=bool)
    matched = m["truth_match"]
    pred_n = np.array([p[2] for p in predicted]) if predicted else np.zeros(0)
    pred_z = np.array([p[1] for p in predicted]) if predicted else np.zeros(0)
    as_absorber = np.array([j >= 0 and pred_n[j] >= 20.0 for j in matched], dtype=float)[dla_truth]
    as_dla = np.array([j >= 0 and pred_n[j] >= DLA_LOGN for j in matched], dtype=float)[dla_truth]
    predicted_dla = np.array([p[2] >= DLA_LOGN and not p[3] for p in predicted], dtype=bool)
    false = (~m["prediction_matches_strong"][predicted_dla]).astype(float) if predicted else np.zeros(0)
    pairs = [(j, t) for t, j in enumerate(matched) if j >= 0 and dla_truth[t]]
    dz = np.array([pred_z[j] - truth[t][1] for j, t in pairs])
    dn = np.array([pred_n[j] - truth[t][2] for j, t in pairs])

    def mean(v):
        return float(np.mean(v)) if len(v) else float("nan")

    def std(v):
        return float(np.std(v)) if len(v) > 1 else float("nan")

    return _none_for_nan(
        {
            "n_true_dla": int(dla_truth.sum()),
            "n_predicted_dla": int(predicted_dla.sum()),
            "completeness_absorber": mean(as_absorber),
            "completeness_absorber_ci": _bootstrap(as_absorber, np.mean, rng),
            "completeness_dla": mean(as_dla),
            "completeness_dla_ci": _bootstrap(as_dla, np.mean, rng),
            "false_dla_fraction": mean(false),
            "false_dla_fraction_ci": _bootstrap(false, np.mean, rng),
            "sigma_z": std(dz),
            "sigma_z_ci": _bootstrap(dz, np.std, rng),
            "bias_z": mean(dz),
            "sigma_log_nhi": std(dn),
            "sigma_log_nhi_ci": _bootstrap(dn, np.std, rng),
            "bias_log_nhi": mean(dn),
        }
    )


SNR_BINS = ((0.0, 6.0), (6.0, 10.0), (10.0, 15.0), (15.0, float("inf")))
ZQSO_BINS = ((0.0, 3.0), (3.0, 3.5), (3.5, 4.0), (4.0, float("inf")))  # the forest thickens with z


def catalog_metrics_binned(predicted, truth, values: dict, bins, name: str, seed: int = 0) -> dict:
    """``catalog_metrics`` per bin of a per-sightline quantity (``values``: sightline -> value),
    keyed "NAME LO-HI"."""
    out = {}
    for lo, hi in bins:
        sids = {s for s, v in values.items() if lo <= v < hi}
        label = f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}"
        out[f"{name} {label}"] = catalog_metrics(
            [p for p in predicted if p[0] in sids], [t for t in truth if t[0] in sids], seed
        ) | {"n_sightlines": len(sids)}
    return out


LOGN_BINS = ((20.3, 20.45), (20.45, 20.6), (20.6, 20.8), (20.8, 21.2), (21.2, float("inf")))


def catalog_metrics_by_log_nhi(predicted: list[tuple], truth: list[tuple], seed: int = 0) -> dict:
    """Where on the column-density axis DLAs are missed and false ones made, keyed
    "log N LO-HI": completeness of the true DLAs whose log N lies in the bin (as absorber and
    as DLA), and the fraction of predicted DLAs whose predicted log N lies in it that match no
    true absorber with log N >= 20.0. The f(N) of DLAs falls steeply from 20.3, so a scatter in
    log N moves many true DLAs below the threshold and many forest blends and sub-DLAs above it;
    this table shows how much of each figure that is. One matching (``match_catalogs``) for all
    bins, each with bootstrap 95% intervals."""
    rng = np.random.default_rng(seed)
    m = match_catalogs(predicted, truth)
    pred_n = np.array([p[2] for p in predicted]) if predicted else np.zeros(0)
    true_n = np.array([t[2] for t in truth]) if truth else np.zeros(0)
    found = np.array([pred_n[j] if j >= 0 else -np.inf for j in m["truth_match"]])
    predicted_dla = np.array([p[2] >= DLA_LOGN and not p[3] for p in predicted], dtype=bool)
    out = {}
    for lo, hi in LOGN_BINS:
        in_bin = (true_n >= lo) & (true_n < hi)
        as_absorber = (found[in_bin] >= 20.0).astype(float)
        as_dla = (found[in_bin] >= DLA_LOGN).astype(float)
        made = predicted_dla & (pred_n >= lo) & (pred_n < hi)
        false = (~m["prediction_matches_strong"][made]).astype(float)
        label = f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}"
        out[f"log N {label}"] = _none_for_nan(
            {
                "n_true_dla": int(in_bin.sum()),
                "completeness_absorber": float(as_absorber.mean()) if len(as_absorber) else float("nan"),
                "completeness_absorber_ci": _bootstrap(as_absorber, np.mean, rng),
                "completeness_dla": float(as_dla.mean()) if len(as_dla) else float("nan"),
                "completeness_dla_ci": _bootstrap(as_dla, np.mean, rng),
                "n_predicted_dla": int(made.sum()),
                "false_dla_fraction": float(false.mean()) if len(false) else float("nan"),
                "false_dla_fraction_ci": _bootstrap(false, np.mean, rng),
            }
        )
    return out


def catalog_metrics_by_snr(predicted, truth, snr: dict, seed: int = 0) -> dict:
    """``catalog_metrics`` overall and per S/N bin (``snr``: sightline -> S/N)."""
    return {"overall": catalog_metrics(predicted, truth, seed)} | catalog_metrics_binned(
        predicted, truth, snr, SNR_BINS, "snr", seed
    )


# ---- data ----------------------------------------------------------------------------------
@dataclass
class DLAData:
    """Sightlines ready to scan, with their absorbers where known.

    x (n, 2148) float32 scan inputs; covered (n, 1748); z_qso, snr (n,); sightline_ids (n,)
    strings (plate-mjd-fiber); absorbers as parallel arrays (absorber_sightline = row index,
    absorber_z, absorber_log_nhi); is_test (n,) held out; is_validation (n,) used to calibrate
    the column-density uncertainty, not trained on."""

    x: np.ndarray
    covered: np.ndarray
    z_qso: np.ndarray
    snr: np.ndarray
    sightline_ids: np.ndarray
    absorber_sightline: np.ndarray
    absorber_z: np.ndarray
    absorber_log_nhi: np.ndarray
    is_test: np.ndarray
    is_validation: np.ndarray
    lyman_limit: np.ndarray | None = None

    def save(self, path) -> None:
        np.savez(path, **{k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def load(cls, path) -> "DLAData":
        with np.load(path, allow_pickle=False) as f:
            return cls(**{k: f[k] for k in f.files})

    def absorbers_of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sel = self.absorber_sightline == i
        return self.absorber_z[sel], self.absorber_log_nhi[sel]

    def truth(self, rows: np.ndarray) -> list[tuple]:
        keep = np.isin(self.absorber_sightline, rows)
        return [
            (int(s), float(z), float(n))
            for s, z, n in zip(
                self.absorber_sightline[keep], self.absorber_z[keep], self.absorber_log_nhi[keep], strict=True
            )
        ]


# ---- training ------------------------------------------------------------------------------
def _labels(data: DLAData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    label = np.full((len(data.x), N_SCAN), -1, np.int8)
    offset = np.zeros((len(data.x), N_SCAN), np.float32)
    column = np.zeros((len(data.x), N_SCAN), np.float32)
    for i in rows:
        z, n = data.absorbers_of(i)
        lab = window_labels(float(data.z_qso[i]), data.covered[i], z, n)
        label[i], offset[i], column[i] = lab["label"], lab["offset"], lab["log_nhi"]
    return label, offset, column


def scan_data(model: DLANet, data: DLAData, rows: np.ndarray, device, batch: int = 8) -> list[tuple[np.ndarray, ...]]:
    """(prob, offset, log_nhi) arrays for each of ``rows``, by the one-pass scan."""
    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            xb = torch.from_numpy(data.x[chunk]).to(device)
            with autocast(device):
                prob, offset, column = scan(model, xb, data.z_qso[chunk])
            out += list(
                zip(
                    prob.float().cpu().numpy(),
                    offset.float().cpu().numpy(),
                    column.float().cpu().numpy(),
                    strict=True,
                )
            )
    return out


def veto_of(cfg: dict) -> tuple[float, float] | None:
    """The Lyman-limit veto's (floor, n_sigma) from a configuration dict (defaults for
    checkpoints saved before it existed), or None when it is off."""
    if not cfg.get("lyman_limit_veto", True):
        return None
    return float(cfg.get("lyman_limit_floor", LL_FLOOR)), float(cfg.get("lyman_limit_sigma", LL_SIGMA))


def find_absorbers(
    data: DLAData,
    rows: np.ndarray,
    scans,
    threshold: float,
    column_sigma: float,
    column_shift: float = 0.0,
    veto: tuple[float, float] | None = None,
) -> list[tuple]:
    """Predicted absorbers as (row, Absorber)."""
    found = []
    for i, (prob, offset, column) in zip(rows, scans, strict=True):
        lyman_limit = data.lyman_limit[i].astype(np.float32) if data.lyman_limit is not None else None
        for a in absorbers_from_scan(
            float(data.z_qso[i]),
            prob,
            offset,
            column,
            data.covered[i],
            threshold,
            column_sigma,
            column_shift,
            lyman_limit,
            veto,
        ):
            found.append((int(i), a))
    return found


def calibrate(
    model: DLANet, data: DLAData, rows: np.ndarray, device, threshold: float, veto: tuple[float, float] | None = None
) -> tuple[float, float]:
    """(shift, sigma) of log N(HI) from validation sightlines: the shift removes the mean error
    on matched true DLAs (a network trained with a squared loss pulls strong systems towards the
    mean), sigma is the spread that remains. (0, 0.2) without validation sightlines."""
    if not len(rows):
        return 0.0, 0.2
    found = find_absorbers(data, rows, scan_data(model, data, rows, device), threshold, 0.0, veto=veto)
    val = catalog_metrics([(i, a.z_abs, a.log_nhi, a.lyman_beta) for i, a in found], data.truth(rows))
    shift = -float(val["bias_log_nhi"]) if val["bias_log_nhi"] is not None else 0.0
    sigma = float(val["sigma_log_nhi"]) if val["sigma_log_nhi"] is not None else 0.2
    return shift, sigma


def _hard_negatives(
    model: DLANet, data: DLAData, rows: np.ndarray, label: np.ndarray, device, threshold: float
) -> np.ndarray:
    """(sightline row, window) of the negative windows of ``rows`` that the model calls
    positive with probability >= ``threshold``."""
    scans = scan_data(model, data, rows, device)
    model.train()
    found = [
        np.stack([np.full(k.size, i), k], axis=1)
        for i, (prob, _, _) in zip(rows, scans, strict=True)
        for k in [np.flatnonzero((prob >= threshold) & (label[i] == 0))]
    ]
    return np.concatenate(found).astype(np.int64) if found else np.empty((0, 2), np.int64)


def _negative_cdf(data: DLAData, neg: np.ndarray, power: float) -> np.ndarray | None:
    """Cumulative draw weights of the negative windows (row, window), tau_eff(z)^power with z the
    Ly-alpha redshift of the window's centre capped at the quasar's; None for uniform draws."""
    if power <= 0:
        return None
    from mlworker.synthetic.spectra import tau_eff

    starts = np.array([scan_start(float(z)) for z in data.z_qso])
    z_window = np.minimum(z_of_pixel(starts[neg[:, 0]] + neg[:, 1]), data.z_qso[neg[:, 0]])
    cdf = np.cumsum(tau_eff(np.clip(z_window, 0.0, None)) ** power)
    return cdf / cdf[-1]


def _epochs_within(
    cfg: DLAConfig, deadline: float | None, step_seconds: float, scan_seconds: float, steps_per_epoch: int
) -> int:
    """Epochs to run: ``cfg.epochs``, or as many as fit before ``deadline`` (time.monotonic())
    at ``step_seconds`` a training step, leaving room for scanning the validation and held-out
    sightlines (``scan_seconds``); at least one."""
    if deadline is None:
        return cfg.epochs
    left = deadline - time.monotonic() - 1.5 * scan_seconds - 30.0  # post-processing, registration
    fit = int(left // (1.05 * step_seconds * steps_per_epoch))
    return max(1, min(cfg.epochs, fit))


def train(
    cfg: DLAConfig, data: DLAData, progress: Callable[[dict], bool] | None = None, deadline: float | None = None
) -> TrainResult:
    """Trains on windows of the training sightlines (positives and negatives 50/50), calibrates
    the column-density uncertainty on the validation sightlines and scans the held-out ones:
    metrics from matching the found absorbers against the truth. ``deadline``: time.monotonic()
    by which the whole run must end (default: ``cfg.time_limit_s`` from now; none if that is 0)."""
    if deadline is None and cfg.time_limit_s > 0:
        deadline = time.monotonic() + cfg.time_limit_s
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = pick_device()
    train_rows = np.flatnonzero(~data.is_test & ~data.is_validation)
    val_rows = np.flatnonzero(data.is_validation)
    test_rows = np.flatnonzero(data.is_test)
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ValueError("the dataset needs both training and held-out sightlines")
    label, offset, column = _labels(data, train_rows)
    pos = np.argwhere(label == 1)
    neg = np.argwhere(label == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("the training sightlines need windows with and without absorbers")
    neg_cdf = _negative_cdf(data, neg, cfg.negative_forest_power)
    # Positives drawn flat in log N(HI) (0.25 dex bins): f(N) is steep, and a network shown
    # mostly weak systems pulls every DLA's column density down towards them.
    bins = np.clip(((column[pos[:, 0], pos[:, 1]] - MIN_POSITIVE_LOGN) / 0.25).astype(int), 0, None)
    pos_cdf = np.cumsum(1.0 / np.bincount(bins)[bins])
    pos_cdf /= pos_cdf[-1]
    x = torch.from_numpy(data.x)
    windows = x.unfold(1, WINDOW, 1)  # (n, 1749, 400) view
    half = cfg.batch_size // 2
    hard = np.empty((0, 2), dtype=neg.dtype)

    def step(model: DLANet, optimizer, n_hard: int) -> torch.Tensor:
        """One batch: positives flat in log N, negatives (a share ``n_hard`` mined), one update."""
        drawn = np.minimum(np.searchsorted(pos_cdf, rng.random(half)), len(pos) - 1)
        drawn_neg = (
            rng.integers(0, len(neg), half - n_hard)
            if neg_cdf is None
            else np.minimum(np.searchsorted(neg_cdf, rng.random(half - n_hard)), len(neg) - 1)
        )
        negatives = [neg[drawn_neg], hard[rng.integers(0, max(len(hard), 1), n_hard)]]
        pick = np.concatenate([pos[drawn], *negatives])
        i, k = torch.from_numpy(pick[:, 0]), torch.from_numpy(pick[:, 1])
        xb = windows[i, k]
        # a continuum misplaced by a few per cent, as on real spectra
        xb = xb * torch.exp(0.05 * torch.randn(len(xb), 1))
        ctx = torch.from_numpy(window_context(data.z_qso[pick[:, 0]], pick[:, 1])).to(device)
        y = torch.from_numpy(label[pick[:, 0], pick[:, 1]].astype(np.float32)).to(device)
        off = torch.from_numpy(offset[pick[:, 0], pick[:, 1]]).to(device)
        col = torch.from_numpy(column[pick[:, 0], pick[:, 1]]).to(device)
        with autocast(device, cpu_bf16=cfg.cpu_bf16):
            logit, off_pred, col_pred = model(xb.to(device), ctx if cfg.window_context else None)
        positive = y > 0.5
        loss = F.binary_cross_entropy_with_logits(logit.float(), y)
        if positive.any():
            loss = loss + cfg.offset_weight * (((off_pred.float() - off) / POSITIVE_PX)[positive] ** 2).mean()
            loss = loss + cfg.column_weight * ((col_pred.float() - col)[positive] ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    steps_per_epoch = math.ceil(cfg.windows_per_epoch / cfg.batch_size)
    epochs = cfg.epochs
    timing = {}
    if deadline is not None:  # time a few steps of a throwaway network, and a short scan
        probe = DLANet(cfg.dropout, context=cfg.window_context).to(device)
        probe_optimizer = torch.optim.AdamW(probe.parameters(), lr=cfg.lr)
        probe.train()
        for n in range(13):
            if n == 3:  # the first steps allocate
                t0 = time.perf_counter()
            step(probe, probe_optimizer, 0)
        timing["step_seconds"] = (time.perf_counter() - t0) / 10
        probe.eval()
        t0 = time.perf_counter()
        sample = (val_rows if len(val_rows) else test_rows)[:8]
        scan_data(probe, data, sample, device)
        per_sightline = (time.perf_counter() - t0) / max(len(sample), 1)
        timing["scan_seconds"] = per_sightline * (len(val_rows) + len(test_rows))
        epochs = _epochs_within(cfg, deadline, timing["step_seconds"], timing["scan_seconds"], steps_per_epoch)
        del probe, probe_optimizer
        torch.manual_seed(cfg.seed)  # the training draws what it would have drawn without the probe
        rng = np.random.default_rng(cfg.seed)
    model = DLANet(cfg.dropout, context=cfg.window_context).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=max(1, epochs * steps_per_epoch), pct_start=0.15
    )
    reporter = EpochReporter(epochs, progress)
    mined = []
    first_mining = max(1, round(epochs * cfg.hard_negative_start))
    for epoch in range(1, epochs + 1):
        model.train()
        total, seen = 0.0, 0
        n_hard = int(half * cfg.hard_negative_fraction) if len(hard) else 0
        for _ in range(steps_per_epoch):
            loss = step(model, optimizer, n_hard)
            scheduler.step()
            total += float(loss) * cfg.batch_size
            seen += cfg.batch_size
        mining = epoch >= first_mining and (epoch - first_mining) % max(cfg.hard_negative_every, 1) == 0
        if cfg.hard_negative_fraction > 0 and epoch < epochs and mining:
            sample = rng.choice(train_rows, min(cfg.hard_negative_sightlines, len(train_rows)), replace=False)
            hard = _hard_negatives(model, data, np.sort(sample), label, device, cfg.hard_negative_threshold)
            mined.append({"epoch": epoch, "windows": len(hard)})
        reporter.epoch_done(epoch, total / max(seen, 1))
    train_seconds = reporter.seconds
    history = reporter.history
    model.eval()
    veto = veto_of(asdict(cfg))
    column_shift, column_sigma = calibrate(model, data, val_rows, device, cfg.vote_threshold, veto)
    t0 = time.perf_counter()
    scans = scan_data(model, data, test_rows, device)
    scan_seconds = time.perf_counter() - t0
    found = find_absorbers(data, test_rows, scans, cfg.vote_threshold, column_sigma, column_shift, veto)
    predicted = [(i, a.z_abs, a.log_nhi, a.lyman_beta) for i, a in found]
    truth = data.truth(test_rows)
    by_snr = catalog_metrics_by_snr(predicted, truth, {int(i): float(data.snr[i]) for i in test_rows}, cfg.seed)
    overall = by_snr["overall"]
    metrics = {
        **overall,
        "dla_score": (overall["completeness_dla"] or 0.0) * (1.0 - (overall["false_dla_fraction"] or 0.0)),
        "by_snr": {k: v for k, v in by_snr.items() if k != "overall"},
        "n_test_sightlines": len(test_rows),
        "n_train_sightlines": len(train_rows),
        "n_train_windows_seen": epochs * steps_per_epoch * cfg.batch_size,
        "epochs_run": epochs,
        "epochs_limited_by_time": epochs < cfg.epochs,
        **{f"probe_{k}": round(v, 4) for k, v in timing.items()},
        "column_sigma_validation": column_sigma,
        "column_shift_validation": column_shift,
        "train_seconds": round(train_seconds, 1),
        "scan_sightlines_per_second": round(len(test_rows) / max(scan_seconds, 1e-9), 2),
        "final_train_loss": history[-1]["loss"] if history else None,
        "hard_negatives_mined": mined,
    }
    checkpoint = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_args": {"dropout": cfg.dropout, "context": cfg.window_context},
        "config": asdict(cfg),
        "column_sigma": column_sigma,
        "column_shift": column_shift,
        "step": epochs * steps_per_epoch,
    }
    evaluation = {
        "sightline_ids": data.sightline_ids[test_rows],
        "snr": data.snr[test_rows],
        "z_qso": data.z_qso[test_rows],
        "truth_row": np.array([t[0] for t in truth], dtype=np.int64),
        "truth_z": np.array([t[1] for t in truth]),
        "truth_log_nhi": np.array([t[2] for t in truth]),
        "pred_row": np.array([i for i, _ in found], dtype=np.int64),
        "pred_z": np.array([a.z_abs for _, a in found]),
        "pred_log_nhi": np.array([a.log_nhi for _, a in found]),
        "pred_log_nhi_err": np.array([a.log_nhi_err for _, a in found]),
        "pred_confidence": np.array([a.confidence for _, a in found]),
        "pred_lyman_beta": np.array([a.lyman_beta for _, a in found]),
        "test_rows": test_rows,
    }
    ranges = {"snr": [float(np.min(data.snr[train_rows])), float(np.max(data.snr[train_rows]))]}
    return TrainResult(checkpoint, metrics, ranges, device.type, history, evaluation)


# ---- inference -----------------------------------------------------------------------------
def load_model(checkpoint: dict, device: torch.device) -> DLANet:
    model = DLANet(**checkpoint.get("model_args", {}))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def ambiguity(prob: np.ndarray, covered: np.ndarray) -> float:
    """How close the least certain scanned window came to the decision: 1 - |2 p - 1|, max."""
    p = prob[covered]
    return float(np.max(1.0 - np.abs(2.0 * p - 1.0))) if p.size else 0.0
