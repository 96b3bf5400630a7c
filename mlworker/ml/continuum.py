"""Quasar continuum estimates on the SDSS grid (numpy only: the web pages use it too)."""

import numpy as np

LOGLAM_STEP = 1e-4
CONTINUUM_WINDOWS = ((1280.0, 1290.0), (1315.0, 1325.0), (1440.0, 1470.0), (1690.0, 1710.0), (2160.0, 2180.0))


def continuum_estimate(start_index: int, flux: np.ndarray, ivar: np.ndarray, z_qso: float) -> np.ndarray:
    """A power law f = A (lambda / 1450 A)^alpha through the medians of the good pixels in
    line-free rest-frame windows red-ward of Lyman alpha (one window: alpha = -1.5; none: the
    median of the good pixels red-ward of Lyman alpha, or of all of them)."""
    flux = np.asarray(flux, dtype=np.float64)
    good = np.asarray(ivar) > 0
    rest = 10 ** ((start_index + np.arange(flux.size)) * LOGLAM_STEP) / (1.0 + z_qso)
    xs, ys = [], []
    for lo, hi in CONTINUUM_WINDOWS:
        inside = good & (rest >= lo) & (rest <= hi)
        if inside.sum() >= 5:
            level = float(np.median(flux[inside]))
            if level > 0:
                xs.append(np.log10(np.sqrt(lo * hi) / 1450.0))
                ys.append(np.log10(level))
    if len(xs) >= 2:
        slope, intercept = np.polyfit(xs, ys, 1)
        slope = float(np.clip(slope, -4.0, 2.0))
        intercept = float(np.mean(np.asarray(ys) - slope * np.asarray(xs)))
    elif len(xs) == 1:
        slope, intercept = -1.5, ys[0] + 1.5 * xs[0]
    else:
        red = good & (rest > 1230.0)
        pool = flux[red] if red.sum() >= 10 else flux[good]
        level = float(np.median(pool)) if pool.size else 1.0
        slope, intercept = 0.0, np.log10(level if level > 0 else 1.0)
    return 10 ** (intercept + slope * np.log10(rest / 1450.0))
