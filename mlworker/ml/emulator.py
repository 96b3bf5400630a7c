"""The GALFIT emulator: a CNN that measures single-Sersic structure in milliseconds (no Django).

From one cutout it predicts the total magnitude, the half-light radius along the major axis,
the Sersic index and the axis ratio, each with an uncertainty (a Gaussian per parameter,
trained with the beta-NLL heteroscedastic loss of Seitzer et al. 2022 so that the means fit
as well as with a squared loss), and three independent probabilities (sigmoids, not a
softmax: a galaxy may be described well by more than one, or by none) that it is best
described as a bulge (single Sersic, n >= 2.5), a disk (n <= 1.5) or a bulge + disk.

The magnitude is learnt relative to the image's own noise (m - ZP + 2.5 log10 sigma_sky), so
the emulator serves cutouts of any depth and zero point; radii are learnt in pixels (the
version records the pixel scale and PSF it was trained for). Magnitude, radius and axis ratio
are learnt as corrections to classical estimates read off the same stamp
(``photometric_reference``: an aperture magnitude, the curve of growth's half-light radius and
a moments axis ratio): a network's output precision is a fixed fraction of its target's spread,
and an aperture correction spreads over a few tenths of a magnitude where the magnitude itself
spreads over six. Training data: GalSim mocks of
known structure (``mlworker.synthetic.structure``), augmented by the 8 rotations/flips, which
change none of the four parameters.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlworker.ml.common import TrainResult, fit_one_cycle
from mlworker.ml.device import autocast, pick_device
from mlworker.ml.imaging import (
    ApertureSNR,
    background_and_noise,
    border,
    circular_apertures,
    conv_trunk,
    eight_views,
    input_ranges,
    normalise,
    pooled,
    random_views,
)
from mlworker.ml.sersic_fit import FitSettings, moffat

PARAMS = ("mag", "log_r_e", "log_n", "q")  # what the regression heads predict (log10, r_e in pixels)
KIND_HEADS = ("bulge", "disk", "bulge_disk")
KINDS = ("bulge", "disk", "intermediate", "bulge_disk")  # as in mlworker.synthetic.structure
CATASTROPHIC_DN = 1.0
CATASTROPHIC_DLOGR = 0.3
APERTURE_RADII_PX = (1.0, 1.5, 2.0, 3.0, 4.0, 5.5, 7.5, 10.0, 13.0, 17.0, 22.0, 28.0)
REFERENCE_APERTURE_PX = 10.0  # the reference magnitude's aperture radius
GROWTH_RADII_PX = np.geomspace(0.5, 30.0, 48)  # the curve of growth the reference radius is read from
PSF_MOFFAT_BETA = FitSettings.psf_moffat_beta  # the band's PSF as the reference fit models it


@dataclass
class EmulatorConfig:
    train_galaxies: int = 24000
    test_galaxies: int = 2000
    validation_fraction: float = 0.05
    composite_fraction: float = 0.25  # bulge + disk systems among the training mocks
    mag_range: tuple[float, float] = (19.0, 25.0)
    channels: tuple[int, ...] = (32, 64, 96, 128)
    hidden: int = 128
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    beta_nll: float = 0.5
    fitter_sample: int = 200  # held-out single-Sersic mocks also fitted by the reference fitter
    # targets learnt as corrections to classical estimates from the stamp (photometric_reference)
    references: tuple[str, ...] = ("mag", "log_r_e", "q")
    # Cutouts are sky-subtracted, as the fit assumes: removing the border's median would also
    # remove a large galaxy's wings, which the total magnitude, r_e and n depend on.
    subtract_background: bool = False
    seed: int = 0


@dataclass
class EmulatorData:
    """Mock galaxies of known structure. images (n, H, W) in e-/s per pixel; kind codes into
    KINDS; truth per galaxy (NaN for bulge + disk systems); the instrument they were made for."""

    images: np.ndarray
    kind: np.ndarray
    mag: np.ndarray
    r_e_arcsec: np.ndarray
    sersic_n: np.ndarray
    q: np.ndarray
    is_test: np.ndarray
    is_validation: np.ndarray
    pixel_scale_arcsec: float
    psf_fwhm_arcsec: float
    zero_point_ab: float
    exposure_time_s: float

    def save(self, path) -> None:
        np.savez(
            path,
            images=self.images.astype(np.float16),  # noise-dominated pixels: half precision is plenty
            **{k: getattr(self, k) for k in ("kind", "mag", "r_e_arcsec", "sersic_n", "q", "is_test", "is_validation")},
            facts=np.array([self.pixel_scale_arcsec, self.psf_fwhm_arcsec, self.zero_point_ab, self.exposure_time_s]),
        )

    @classmethod
    def load(cls, path) -> "EmulatorData":
        with np.load(path, allow_pickle=False) as f:
            facts = f["facts"]
            return cls(
                images=f["images"].astype(np.float32),
                **{k: f[k] for k in ("kind", "mag", "r_e_arcsec", "sersic_n", "q", "is_test", "is_validation")},
                pixel_scale_arcsec=float(facts[0]),
                psf_fwhm_arcsec=float(facts[1]),
                zero_point_ab=float(facts[2]),
                exposure_time_s=float(facts[3]),
            )


# ---- targets -------------------------------------------------------------------------------
def noise_magnitude(images: np.ndarray, zero_point_ab: float) -> np.ndarray:
    """ZP - 2.5 log10(sigma_sky): the magnitude of a source of one sky sigma's flux."""
    _, sigma = background_and_noise(border(np.nan_to_num(np.asarray(images, dtype=np.float32))))
    return zero_point_ab - 2.5 * np.log10(sigma)


def targets(data: EmulatorData) -> np.ndarray:
    """(n, 4) regression targets: m - noise magnitude, log10 r_e (pixels), log10 n, q."""
    rel_mag = data.mag - noise_magnitude(data.images, data.zero_point_ab)
    log_r = np.log10(data.r_e_arcsec / data.pixel_scale_arcsec)
    return np.stack([rel_mag, log_r, np.log10(data.sersic_n), data.q], axis=1).astype(np.float32)


def kind_labels(kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, mask), each (n, 3) for bulge, disk, bulge+disk. An intermediate single Sersic
    (1.5 < n < 2.5) is neither a bulge nor a disk, and says nothing to those two heads."""
    names = np.asarray(KINDS)[kind]
    labels = np.stack([names == "bulge", names == "disk", names == "bulge_disk"], axis=1).astype(np.float32)
    mask = np.ones_like(labels)
    mask[names == "intermediate", :2] = 0.0
    return labels, mask


# ---- classical estimates the network corrects ------------------------------------------------
_GROWTH_MASKS: dict = {}


def _growth_masks(size: int, device) -> torch.Tensor:
    """(R, size*size) circular aperture masks around the stamp centre, GROWTH_RADII_PX and
    the reference aperture last."""
    key = (size, str(device))
    if key not in _GROWTH_MASKS:
        _GROWTH_MASKS[key] = circular_apertures([*GROWTH_RADII_PX, REFERENCE_APERTURE_PX], size).to(device)
    return _GROWTH_MASKS[key]


def photometric_reference(x: torch.Tensor, psf_variance: float | None = None) -> torch.Tensor:
    """(B, 3) classical estimates from normalised stamps (B, 1, H, W), read about the stamp
    centre and so unchanged by the 8 rotations/flips:
    - the aperture magnitude -2.5 log10(flux within REFERENCE_APERTURE_PX / sky sigma), the
      flux floored at its own noise so that faint stamps stay finite;
    - log10 of the half-light radius in pixels, where the curve of growth reaches half its value
      at 30 px (linear interpolation; 0.5-30 px);
    - the axis ratio sqrt(l2 / l1) of the adaptive second moments (``adaptive_moments``, from a
      round weight of 1.5 half-light radii) less the PSF's ``psf_variance`` (px^2; its own
      adaptive moments); 0.7 where the weighted flux is below 3 sigma. Without
      ``psf_variance`` (versions trained before it), of the moments under the round weight.
    The PSF makes the last two rounder and the radius larger than the truth (the subtraction
    is exact for Gaussians only); the network learns the corrections."""
    size = x.shape[-1]
    masks = _growth_masks(size, x.device)
    linear = torch.sinh(x.float().flatten(1)) * 3.0  # back to units of the sky noise
    sums = linear @ masks.T  # (B, R + 1)
    ref_area = masks[-1].sum()
    mag = -2.5 * torch.log10(sums[:, -1].clamp_min(ref_area.sqrt()))
    growth = torch.cummax(sums[:, :-1], dim=1).values  # noise may dip it; light only adds up
    half = 0.5 * growth[:, -1:].clamp_min(1e-6)
    radii = torch.as_tensor(GROWTH_RADII_PX, dtype=torch.float32, device=x.device)
    above = (growth >= half).float().argmax(dim=1).clamp(1, len(radii) - 1)  # first radius past half
    g0 = growth.gather(1, (above - 1)[:, None])[:, 0]
    g1 = growth.gather(1, above[:, None])[:, 0]
    t = ((half[:, 0] - g0) / (g1 - g0).clamp_min(1e-6)).clamp(0.0, 1.0)
    r_half = (radii[above - 1] + t * (radii[above] - radii[above - 1])).clamp(0.5, 30.0)
    xx, yy = _centred_grid(size, x.device)
    s2 = (1.5 * r_half).clamp(1.5, 20.0) ** 2
    if psf_variance is None:  # versions trained before the adaptive moments: one round weight
        a, b, cc, snr = _weighted_covariance(linear, xx, yy, s2, torch.zeros_like(s2), s2)
    else:
        a, b, cc, snr = adaptive_moments(linear, xx, yy, s2)
        a, cc = a - psf_variance, cc - psf_variance
    disc = torch.sqrt(((a - cc) / 2) ** 2 + b**2)
    l1 = ((a + cc) / 2 + disc).clamp_min(1e-3)
    l2 = ((a + cc) / 2 - disc).clamp(1e-4)
    q = torch.sqrt(l2 / l1).clamp(0.05, 1.0)
    q = torch.where(snr > 3, q, torch.full_like(q, 0.7))
    return torch.stack([mag, torch.log10(r_half), q], dim=1)


def _centred_grid(size: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened pixel coordinates (x, y) about the stamp centre."""
    c = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    yy, xx = (v.flatten() for v in torch.meshgrid(c, c, indexing="ij"))
    return xx, yy


def _weighted_covariance(linear, xx, yy, a, b, c):
    """Twice the second moments of the light (B, P) under the elliptical Gaussian weight of
    covariance [[a, b], [b, c]] (per stamp) about the stamp centre, and the weighted flux's S/N."""
    det = (a * c - b * b).clamp_min(1e-6)
    ia, ib, ic = c / det, -b / det, a / det
    w = torch.exp(-0.5 * (ia[:, None] * xx**2 + 2 * ib[:, None] * xx * yy + ic[:, None] * yy**2))
    iw = linear * w
    m0 = iw.sum(1)
    m0_safe = m0.clamp_min(1e-6)
    moments = [2 * (iw * v[None, :]).sum(1) / m0_safe for v in (xx * xx, xx * yy, yy * yy)]
    return (*moments, m0 / torch.sqrt((w**2).sum(1)))


def adaptive_moments(linear, xx, yy, s2, iterations: int = 8):
    """Adaptive second moments (Bernstein & Jarvis 2002): the elliptical Gaussian weight is
    matched to the light by iterating weight = twice the weighted moments, whose fixed point for
    a Gaussian is its covariance. Starts from a round weight of variance s2 (B,); a step that
    would make the weight degenerate (noise) keeps the previous one. Returns the weight's
    covariance (a, b, c) and the weighted flux's S/N."""
    a, b, c = s2, torch.zeros_like(s2), s2
    for _ in range(iterations):
        na, nb, nc, snr = _weighted_covariance(linear, xx, yy, a, b, c)
        ok = (na > 0.25) & (nc > 0.25) & (na * nc - nb * nb > 0.05) & (na + nc < 800.0)
        a, b, c = torch.where(ok, na, a), torch.where(ok, nb, b), torch.where(ok, nc, c)
    return a, b, c, snr


def psf_moment_variance(fwhm_px: float, beta: float = PSF_MOFFAT_BETA, size: int = 64, oversample: int = 5) -> float:
    """The adaptive-moment variance (px^2 per axis) of a round Moffat PSF of ``fwhm_px``
    integrated over pixels: what the PSF adds to a galaxy's adaptive moments (exactly, for
    Gaussians)."""
    sub = (np.arange(size * oversample) + 0.5) / oversample - size / 2
    image = moffat(sub[None, :], sub[:, None], fwhm_px, beta)
    image = image.reshape(size, oversample, size, oversample).sum(axis=(1, 3))
    linear = torch.from_numpy((image / image.sum()).astype(np.float32)).flatten()[None]
    xx, yy = _centred_grid(size)
    a, _, cc, _ = adaptive_moments(linear, xx, yy, torch.tensor([4.0]), iterations=30)
    return float((a + cc).item() / 2)


REFERENCED = {"mag": 0, "log_r_e": 1, "q": 2}  # target -> column of photometric_reference


def reference_offsets(x: torch.Tensor, which, psf_variance: float | None = None) -> torch.Tensor:
    """(B, 4) per-target offsets the network's outputs are added to: the classical estimate
    for the targets in ``which``, 0 for the others (on x's device)."""
    out = torch.zeros(len(x), len(PARAMS), device=x.device)
    which = [name for name in which if name in REFERENCED]
    if which:
        ref = photometric_reference(x, psf_variance)
        out[:, [PARAMS.index(name) for name in which]] = ref[:, [REFERENCED[name] for name in which]]
    return out


def references(
    x: torch.Tensor, which=REFERENCED, psf_variance: float | None = None, batch_size: int = 512
) -> np.ndarray:
    """``reference_offsets`` of many stamps, in batches, as a numpy array (n, 4)."""
    with torch.no_grad():
        parts = [
            reference_offsets(x[s : s + batch_size], which, psf_variance).cpu().numpy()
            for s in range(0, len(x), batch_size)
        ]
    return np.concatenate(parts) if parts else np.zeros((0, len(PARAMS)), np.float32)


# ---- the network ---------------------------------------------------------------------------
class EmulatorCNN(nn.Module):
    """Conv blocks (conv-BN-ReLU, 2x2 max pool) -> [global mean, global max], beside a curve of
    growth (S/N within 12 circular apertures of 1-28 px around the stamp centre, which carries
    the flux, size and concentration a Sersic fit reads) -> dense -> 4 means, 4 log sigmas
    and 3 logits."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 96, 128), hidden: int = 128, image_size: int = 64):
        super().__init__()
        self.features = conv_trunk(channels)
        self.apertures = ApertureSNR(APERTURE_RADII_PX, image_size)
        self.photometry = nn.Sequential(nn.Linear(len(APERTURE_RADII_PX), 64), nn.ReLU(inplace=True))
        self.head = nn.Sequential(
            nn.Linear(2 * channels[-1] + 64, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 2 * len(PARAMS) + len(KIND_HEADS)),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, 1, H, W) normalised -> (mean (B, 4), log sigma (B, 4), kind logits (B, 3)),
        the first two in standardised target units."""
        out = self.head(torch.cat([pooled(self.features(x)), self.photometry(self.apertures(x))], dim=1))
        k = len(PARAMS)
        return out[:, :k], out[:, k : 2 * k].clamp(-7, 3), out[:, 2 * k :]


def beta_nll(mean, log_sigma, target, mask, beta: float) -> torch.Tensor:
    """Gaussian negative log likelihood weighted by sigma^(2 beta) (detached), per element,
    averaged over the unmasked ones."""
    nll = 0.5 * ((target - mean) / log_sigma.exp()) ** 2 + log_sigma
    if beta > 0:
        nll = nll * (2 * beta * log_sigma).exp().detach()
    return (nll * mask).sum() / mask.sum().clamp_min(1.0)


# ---- training ------------------------------------------------------------------------------
def train(cfg: EmulatorConfig, data: EmulatorData, progress: Callable[[dict], bool] | None = None) -> TrainResult:
    """Trains on the training mocks (validation ones watched), evaluates on the held-out ones
    against the truth and, on ``cfg.fitter_sample`` of them, against the reference fitter."""
    torch.manual_seed(cfg.seed)
    device = pick_device()
    generator = torch.Generator().manual_seed(cfg.seed)
    train_idx = np.flatnonzero(~data.is_test & ~data.is_validation)
    test_idx = np.flatnonzero(data.is_test)
    if len(train_idx) < 2 or len(test_idx) == 0:
        raise ValueError("the dataset needs training and held-out galaxies")
    x = torch.from_numpy(normalise(data.images, subtract_background=cfg.subtract_background))[:, None]
    unknown = set(cfg.references) - set(REFERENCED)
    if unknown:
        raise ValueError(f"no classical reference for {sorted(unknown)} (references: {sorted(REFERENCED)})")
    psf_variance = psf_moment_variance(data.psf_fwhm_arcsec / data.pixel_scale_arcsec)
    y_raw = targets(data) - references(x, cfg.references, psf_variance)  # the network learns corrections
    single = np.isfinite(y_raw).all(axis=1)
    centre = np.nanmean(y_raw[train_idx], axis=0)
    scale = np.nanstd(y_raw[train_idx], axis=0)
    y = torch.from_numpy(np.nan_to_num((y_raw - centre) / scale))
    y_mask = torch.from_numpy(np.repeat(single[:, None], len(PARAMS), axis=1).astype(np.float32))
    labels, label_mask = (torch.from_numpy(a) for a in kind_labels(data.kind))
    model = EmulatorCNN(tuple(cfg.channels), cfg.hidden, data.images.shape[-1]).to(device)
    model = model.to(memory_format=torch.channels_last)

    def batch_loss(b):
        xb = random_views(x[b], generator).contiguous(memory_format=torch.channels_last).to(device)
        with autocast(device):
            mean, log_sigma, logits = model(xb)
        loss = beta_nll(mean.float(), log_sigma.float(), y[b].to(device), y_mask[b].to(device), cfg.beta_nll)
        kind_loss = F.binary_cross_entropy_with_logits(logits.float(), labels[b].to(device), reduction="none")
        m = label_mask[b].to(device)
        return loss + (kind_loss * m).sum() / m.sum().clamp_min(1.0)

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
        pct_start=0.15,
    )
    checkpoint = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_args": {"channels": list(cfg.channels), "hidden": cfg.hidden, "image_size": int(data.images.shape[-1])},
        "target_centre": centre.tolist(),
        "target_scale": scale.tolist(),
        "photometric_reference": list(cfg.references),
        "reference_psf_variance_px2": psf_variance,
        "pixel_scale_arcsec": data.pixel_scale_arcsec,
        "psf_fwhm_arcsec": data.psf_fwhm_arcsec,
        "config": asdict(cfg),
        "step": cfg.epochs,
    }
    predicted = predict(checkpoint, data.images[test_idx], data.zero_point_ab, device=device, model=model)
    truth = {k: getattr(data, k)[test_idx] for k in ("mag", "r_e_arcsec", "sersic_n", "q")}
    kinds = data.kind[test_idx]
    metrics = structure_metrics(predicted, truth, truth["mag"])
    metrics["kind_auc"] = kind_aucs(predicted, kinds, truth["mag"], max_mag=23.0)
    metrics["uncertainty_calibration"] = uncertainty_calibration(predicted, truth)
    metrics["train_seconds"] = round(reporter.seconds, 1)
    metrics["final_train_loss"] = reporter.history[-1]["loss"] if reporter.history else None
    evaluation = {
        "index": test_idx,
        "kind": kinds,
        **{f"true_{k}": v for k, v in truth.items()},
        **{f"emulator_{k}": np.asarray(v, dtype=np.float32) for k, v in predicted.items()},
    }
    if cfg.fitter_sample > 0:
        fitted = _fit_sample(data, test_idx, cfg)
        evaluation.update(fitted)
        chosen = fitted["fitter_index"]
        ok = fitted["fitter_ok"]
        sub_truth = {k: getattr(data, k)[chosen] for k in ("mag", "r_e_arcsec", "sersic_n", "q")}
        fitter = {k: fitted[f"fitter_{k}"] for k in ("mag", "r_e_arcsec", "sersic_n", "q")}
        position = {int(i): j for j, i in enumerate(test_idx)}
        rows = np.array([position[int(i)] for i in chosen])
        emulator_sub = {k: np.asarray(predicted[k])[rows] for k in ("mag", "r_e_arcsec", "sersic_n", "q")}
        metrics["fitter"] = {
            "n": int(len(chosen)),
            "failures": int((~ok).sum()),
            "seconds_per_fit": float(np.mean(fitted["fitter_seconds"])),
            "fitter_vs_truth": structure_metrics(fitter, sub_truth, sub_truth["mag"], valid=ok),
            "emulator_vs_truth": structure_metrics(emulator_sub, sub_truth, sub_truth["mag"], valid=ok),
            "emulator_vs_fitter": structure_metrics(emulator_sub, fitter, sub_truth["mag"], valid=ok),
        }
    metrics["galaxies_per_second_per_core"] = cpu_rate(checkpoint, data.images[test_idx[:1000]], data.zero_point_ab)
    metrics["nmad_log_n"] = metrics["overall"]["log_n"]["nmad"]
    return TrainResult(
        checkpoint=checkpoint,
        metrics=metrics,
        input_ranges=input_ranges(data.images[train_idx]),
        device=device.type,
        history=reporter.history,
        evaluation=evaluation,
    )


def cpu_rate(checkpoint: dict, images: np.ndarray, zero_point_ab: float) -> float:
    """Galaxies per second through ``predict`` (normalisation included) on one CPU thread."""
    import time

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cpu = torch.device("cpu")
        model = load_model(checkpoint, cpu)
        predict(checkpoint, images[:64], zero_point_ab, device=cpu, model=model)  # warm up
        started = time.perf_counter()
        predict(checkpoint, images, zero_point_ab, device=cpu, model=model)
        return float(len(images) / (time.perf_counter() - started))
    finally:
        torch.set_num_threads(threads)


def _fit_sample(data: EmulatorData, test_idx: np.ndarray, cfg: EmulatorConfig) -> dict:
    from mlworker.ml.sersic_fit import fit_sersic

    singles = test_idx[np.isfinite(data.sersic_n[test_idx])]
    chosen = np.sort(np.random.default_rng([cfg.seed, 5]).permutation(singles)[: cfg.fitter_sample])
    settings = FitSettings(
        pixel_scale_arcsec=data.pixel_scale_arcsec,
        psf_fwhm_arcsec=data.psf_fwhm_arcsec,
        zero_point_ab=data.zero_point_ab,
        exposure_time_s=data.exposure_time_s,
    )
    fits = [fit_sersic(data.images[i], settings) for i in chosen]
    return {
        "fitter_index": chosen,
        "fitter_ok": np.array([f.ok for f in fits]),
        "fitter_seconds": np.array([f.seconds for f in fits]),
        **{f"fitter_{k}": np.array([getattr(f, k) for f in fits]) for k in ("mag", "r_e_arcsec", "sersic_n", "q")},
    }


# ---- inference ------------------------------------------------------------------------------
def load_model(checkpoint: dict, device: torch.device) -> EmulatorCNN:
    args = checkpoint["model_args"]
    model = EmulatorCNN(tuple(args["channels"]), args["hidden"], args["image_size"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).to(memory_format=torch.channels_last).eval()


def predict(
    checkpoint: dict,
    images: np.ndarray,
    zero_point_ab: float,
    *,
    device: torch.device | None = None,
    model: EmulatorCNN | None = None,
    batch_size: int = 128,
    pixel_scale_arcsec: float | None = None,
) -> dict:
    """Per image: mag, r_e_arcsec, sersic_n, q with mag_err (mag), log_r_e_err and log_n_err
    (dex), q_err, and p_bulge, p_disk, p_bulge_disk; arrays of length n."""
    device = device or pick_device()
    model = model or load_model(checkpoint, device)
    model.eval()
    centre = np.asarray(checkpoint["target_centre"], dtype=np.float32)
    scale = np.asarray(checkpoint["target_scale"], dtype=np.float32)
    pixel_scale = pixel_scale_arcsec or checkpoint["pixel_scale_arcsec"]
    subtract = bool(checkpoint.get("config", {}).get("subtract_background", True))
    x = torch.from_numpy(normalise(images, subtract_background=subtract))[:, None]
    which = checkpoint.get("photometric_reference") or ()
    psf_variance = checkpoint.get("reference_psf_variance_px2")
    centre_t, scale_t = torch.from_numpy(centre).to(device), torch.from_numpy(scale).to(device)
    values, sigmas, probs = [], [], []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device).contiguous(memory_format=torch.channels_last)
            with autocast(device):
                mean, log_sigma, logits = model(xb)
            values.append(
                (mean.float() * scale_t + centre_t + reference_offsets(xb, which, psf_variance)).cpu().numpy()
            )
            sigmas.append(log_sigma.float().exp().cpu().numpy())
            probs.append(torch.sigmoid(logits.float()).cpu().numpy())
    k = len(PARAMS)
    value = np.concatenate(values) if values else np.zeros((0, k), np.float32)
    sigma = np.concatenate(sigmas) if sigmas else np.zeros((0, k), np.float32)
    prob = np.concatenate(probs) if probs else np.zeros((0, len(KIND_HEADS)), np.float32)
    err = sigma * scale
    mag = value[:, 0] + noise_magnitude(images, zero_point_ab)
    return {
        "mag": mag,
        "mag_err": err[:, 0],
        "r_e_arcsec": 10 ** value[:, 1] * pixel_scale,
        "log_r_e_err": err[:, 1],
        "sersic_n": 10 ** value[:, 2],
        "log_n_err": err[:, 2],
        "q": np.clip(value[:, 3], 0.05, 1.0),
        "q_err": err[:, 3],
        "p_bulge": prob[:, 0],
        "p_disk": prob[:, 1],
        "p_bulge_disk": prob[:, 2],
    }


def predict_views(checkpoint: dict, images: np.ndarray, zero_point_ab: float, **kwargs) -> dict:
    """The mean over the 8 rotations/flips (a test-time average)."""
    views = [
        predict(checkpoint, v[:, 0].numpy(), zero_point_ab, **kwargs)
        for v in eight_views(torch.from_numpy(np.asarray(images, dtype=np.float32))[:, None])
    ]
    return {k: np.mean([v[k] for v in views], axis=0) for k in views[0]}


# ---- metrics --------------------------------------------------------------------------------
MAG_BINS = ((19.0, 21.0), (21.0, 22.0), (22.0, 23.0), (23.0, 24.0), (24.0, 25.0))


def nmad(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else float("nan")


def differences(a: dict, b: dict) -> dict:
    """a - b per parameter: mag (mag), log_r_e and log_n (dex), q."""
    return {
        "mag": np.asarray(a["mag"], float) - np.asarray(b["mag"], float),
        "log_r_e": np.log10(np.asarray(a["r_e_arcsec"], float) / np.asarray(b["r_e_arcsec"], float)),
        "log_n": np.log10(np.asarray(a["sersic_n"], float) / np.asarray(b["sersic_n"], float)),
        "q": np.asarray(a["q"], float) - np.asarray(b["q"], float),
    }


def _summary(d: dict, a: dict, b: dict, sel: np.ndarray) -> dict:
    out = {"n": int(sel.sum())}
    if not sel.any():
        return out
    for k, v in d.items():
        out[k] = {
            "median": float(np.median(v[sel])),
            "median_abs": float(np.median(np.abs(v[sel]))),
            "nmad": nmad(v[sel]),
        }
    dn = np.asarray(a["sersic_n"], float)[sel] - np.asarray(b["sersic_n"], float)[sel]
    out["n_rel"] = {"median_abs": float(np.median(np.abs(dn) / np.asarray(b["sersic_n"], float)[sel]))}
    catastrophic = (np.abs(dn) > CATASTROPHIC_DN) | (np.abs(d["log_r_e"][sel]) > CATASTROPHIC_DLOGR)
    out["catastrophic_fraction"] = float(catastrophic.mean())
    return out


def structure_metrics(a: dict, b: dict, mags: np.ndarray, valid: np.ndarray | None = None) -> dict:
    """How ``a`` differs from ``b`` (truth or another method): per parameter the median,
    median absolute difference and NMAD, the median |dn|/n, and the fraction of catastrophic
    outliers (|dn| > 1 or |d log r_e| > 0.3); overall and per magnitude bin (of ``mags``)."""
    d = differences(a, b)
    ok = np.all([np.isfinite(v) for v in d.values()], axis=0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    mags = np.asarray(mags, float)
    return {
        "overall": _summary(d, a, b, ok),
        "by_magnitude": {f"{lo:g}-{hi:g}": _summary(d, a, b, ok & (mags >= lo) & (mags < hi)) for lo, hi in MAG_BINS},
    }


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half)."""
    from scipy.stats import rankdata

    label = np.asarray(label, dtype=bool)
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def kind_aucs(predicted: dict, kind: np.ndarray, mags: np.ndarray, max_mag: float) -> dict:
    """ROC AUC of each probability against the true kind, for galaxies brighter than
    ``max_mag`` (intermediate single Sersic galaxies left out of the bulge and disk ones)."""
    names = np.asarray(KINDS)[kind]
    bright = np.asarray(mags) < max_mag
    out = {"max_mag": max_mag}
    for head in KIND_HEADS:
        sel = bright if head == "bulge_disk" else bright & (names != "intermediate")
        out[head] = roc_auc(np.asarray(predicted[f"p_{head}"])[sel], names[sel] == head)
    return out


def uncertainty_calibration(predicted: dict, truth: dict) -> dict:
    """Per parameter, the share of |error| / sigma below 1 (68% for calibrated Gaussians)."""
    d = differences(predicted, truth)
    errs = {
        "mag": predicted["mag_err"],
        "log_r_e": predicted["log_r_e_err"],
        "log_n": predicted["log_n_err"],
        "q": predicted["q_err"],
    }
    out = {}
    for k, v in d.items():
        ok = np.isfinite(v)
        out[k] = float(np.mean(np.abs(v[ok]) < np.asarray(errs[k])[ok])) if ok.any() else float("nan")
    return out
