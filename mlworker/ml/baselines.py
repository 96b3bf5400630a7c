"""Baselines the morphology CNN must beat, trained and evaluated on the same split (no Django).

- ``prior``: every galaxy gets the training set's vote fractions (votes for an answer over
  votes that reached its question, pooled over galaxies).
- ``logistic``: per answer, a logistic regression of the vote counts (binomial likelihood,
  so a galaxy with more votes weighs more; L2-regularised) on simple image statistics:
  half-light radius, concentration, S/N, ellipticity and flux, measured non-parametrically.
  Answers of a single-choice question are renormalised to sum to one.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

FEATURE_NAMES = ("log_r50_px", "concentration", "log_snr", "ellipticity", "log_flux", "asymmetry")


def image_features(images: np.ndarray, max_radius: float | None = None) -> np.ndarray:
    """(n, 6) statistics per image, measured around the light-weighted centre:

    r50 (pixels, from the curve of growth within ``max_radius``), concentration
    C = 5 log10(r80 / r20), log10 S/N of the flux within 1.5 r80, ellipticity 1 - b/a from
    the second moments of pixels above 2 sigma, log10 flux, and rotational asymmetry
    sum|I - I_180| / sum|I| within 1.5 r50.
    """
    from mlworker.ml.imaging import background_and_noise, border

    images = np.nan_to_num(np.asarray(images, dtype=np.float64))
    n, h, w = images.shape
    max_radius = max_radius or 0.45 * min(h, w)
    background, sigma = background_and_noise(border(images))
    img = images - background[:, None, None]
    yy, xx = np.mgrid[:h, :w].astype(float)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    # Light-weighted centre of the significant pixels within 8 px of the stamp centre.
    central = (yy - cy) ** 2 + (xx - cx) ** 2 < 64
    wgt = np.where((img > 2 * sigma[:, None, None]) & central, img, 0.0)
    wsum = wgt.sum(axis=(1, 2))
    ok = wsum > 0
    my = np.where(ok, (wgt * yy).sum(axis=(1, 2)) / np.where(ok, wsum, 1), cy)
    mx = np.where(ok, (wgt * xx).sum(axis=(1, 2)) / np.where(ok, wsum, 1), cx)
    r = np.sqrt((yy[None] - my[:, None, None]) ** 2 + (xx[None] - mx[:, None, None]) ** 2)
    # Curve of growth in 0.5 px steps from one histogram of flux in radius bins per image.
    radii = np.arange(0.5, max_radius + 1e-9, 0.5)
    nbins = len(radii)
    rbin = np.minimum(np.ceil(r / 0.5).astype(np.int64) - 1, nbins)  # bin nbins collects r > max_radius
    rbin = np.maximum(rbin, 0)
    flat_index = (np.arange(n)[:, None, None] * (nbins + 1) + rbin).ravel()
    profile = np.bincount(flat_index, weights=img.ravel(), minlength=n * (nbins + 1)).reshape(n, nbins + 1)
    growth = np.cumsum(profile[:, :nbins], axis=1)
    total = np.maximum(growth[:, -1], 1e-12)

    def radius_at(frac):
        reached = growth >= frac * total[:, None]
        first = np.where(reached.any(axis=1), reached.argmax(axis=1), len(radii) - 1)
        return radii[first]

    r20, r50, r80 = radius_at(0.2), radius_at(0.5), radius_at(0.8)
    concentration = 5 * np.log10(r80 / r20)
    aperture = np.minimum(1.5 * r80, max_radius)
    npix = np.pi * aperture**2
    inside = r <= aperture[:, None, None]
    flux = np.where(inside, img, 0.0).sum(axis=(1, 2))
    snr = np.clip(flux, 1e-3, None) / (sigma * np.sqrt(npix))
    sig = np.where(img > 2 * sigma[:, None, None], img, 0.0) * inside
    s = np.maximum(sig.sum(axis=(1, 2)), 1e-12)
    dy, dx = yy[None] - my[:, None, None], xx[None] - mx[:, None, None]
    myy, mxx, mxy = ((sig * dy * dy).sum((1, 2)) / s, (sig * dx * dx).sum((1, 2)) / s, (sig * dx * dy).sum((1, 2)) / s)
    root = np.sqrt(((mxx - myy) / 2) ** 2 + mxy**2)
    major, minor = (mxx + myy) / 2 + root, np.clip((mxx + myy) / 2 - root, 0, None)
    ellipticity = np.where(major > 0, 1 - np.sqrt(minor / np.where(major > 0, major, 1)), 0.0)
    rotated = img[:, ::-1, ::-1]  # about the stamp centre: good enough for centred cutouts
    near = r <= np.maximum(1.5 * r50, 2)[:, None, None]
    asym = (np.abs(img - rotated) * near).sum((1, 2)) / np.maximum((np.abs(img) * near).sum((1, 2)), 1e-12)
    return np.stack(
        [np.log10(r50), concentration, np.log10(snr), ellipticity, np.log10(np.clip(total, 1e-6, None)), asym], axis=1
    )


@dataclass
class PriorBaseline:
    fractions: np.ndarray  # (K,)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.tile(self.fractions, (len(images), 1))


@dataclass
class LogisticBaseline:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (F + 1, K)
    single_slices: list[tuple[int, int]]

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_features(image_features(images))

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        z = (features - self.mean) / self.scale
        design = np.hstack([np.ones((len(z), 1)), z])
        p = 1 / (1 + np.exp(-(design @ self.weights)))
        for a, b in self.single_slices:
            p[:, a:b] /= np.maximum(p[:, a:b].sum(axis=1, keepdims=True), 1e-12)
        return p


def fit_prior(data, train_idx: np.ndarray) -> PriorBaseline:
    trials = data.answer_trials()[train_idx]
    return PriorBaseline(data.counts[train_idx].sum(axis=0) / np.maximum(trials.sum(axis=0), 1))


def fit_logistic(data, train_idx: np.ndarray, l2: float = 1e-3, features: np.ndarray | None = None) -> LogisticBaseline:
    x = image_features(data.images[train_idx]) if features is None else features
    mean, scale = x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    design = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    counts = data.counts[train_idx].astype(float)
    trials = data.answer_trials()[train_idx]
    weights = np.zeros((design.shape[1], counts.shape[1]))
    for k in range(counts.shape[1]):
        c, t = counts[:, k], trials[:, k]
        norm = max(t.sum(), 1.0)

        def loss(w, c=c, t=t, norm=norm):
            z = design @ w
            # binomial NLL: t log(1 + e^z) - c z, stable via logaddexp
            value = (t * np.logaddexp(0, z) - c * z).sum() / norm + l2 * (w[1:] ** 2).sum()
            p = 1 / (1 + np.exp(-z))
            grad = design.T @ (t * p - c) / norm
            grad[1:] += 2 * l2 * w[1:]
            return value, grad

        weights[:, k] = minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B").x
    singles = [(q.start, q.stop) for q in data.questions if q.kind == "single"]
    return LogisticBaseline(mean, scale, weights, singles)


def fit_all(data, train_idx: np.ndarray) -> dict:
    return {"prior": fit_prior(data, train_idx), "logistic": fit_logistic(data, train_idx)}
