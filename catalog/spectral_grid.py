"""The SDSS log-lambda grid: pixel i has log10(lambda/A) = i * 1e-4 (no Django).

Spectra already on the grid keep their pixels; others are resampled by pixel overlap
(flux-conserving: each output pixel is the inverse-variance-free overlap-weighted mean of
the input pixels it covers, masked pixels excluded, variances propagated).
"""

import numpy as np

LOGLAM_STEP = 1e-4
_ON_GRID_TOLERANCE = 0.02  # in pixels


def grid_index(loglam: np.ndarray | float) -> np.ndarray:
    return np.rint(np.asarray(loglam, dtype=np.float64) / LOGLAM_STEP).astype(np.int64)


def grid_loglam(start_index: int, n_pixels: int) -> np.ndarray:
    return (start_index + np.arange(n_pixels)) * LOGLAM_STEP


def is_on_grid(loglam: np.ndarray) -> bool:
    position = np.asarray(loglam, dtype=np.float64) / LOGLAM_STEP
    index = np.rint(position)
    return bool(np.all(np.abs(position - index) < _ON_GRID_TOLERANCE) and np.all(np.diff(index) == 1))


def _edges(centres: np.ndarray) -> np.ndarray:
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[centres[0] - (mid[0] - centres[0])], mid, [centres[-1] + (centres[-1] - mid[-1])]])


def resample(loglam: np.ndarray, flux: np.ndarray, ivar: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Flux and ivar on the SDSS grid covering the input; returns (start_index, flux, ivar)."""
    loglam = np.asarray(loglam, dtype=np.float64)
    in_edges = _edges(loglam)
    start = int(np.ceil(in_edges[0] / LOGLAM_STEP - 0.5 + 1e-9))
    stop = int(np.floor(in_edges[-1] / LOGLAM_STEP + 0.5 - 1e-9))  # exclusive
    if stop - start < 2:
        raise ValueError("spectrum too short to resample onto the SDSS grid")
    out_edges = (np.arange(start, stop + 1) - 0.5) * LOGLAM_STEP
    # Every boundary from either grid cuts the axis into segments that each lie inside one
    # input pixel and one output pixel; a segment's length is their overlap.
    cuts = np.union1d(in_edges, out_edges)
    cuts = cuts[(cuts >= max(in_edges[0], out_edges[0])) & (cuts <= min(in_edges[-1], out_edges[-1]))]
    centre = 0.5 * (cuts[1:] + cuts[:-1])
    length = np.diff(cuts)
    i_in = np.searchsorted(in_edges, centre) - 1
    i_out = np.searchsorted(out_edges, centre) - 1
    good = np.asarray(ivar)[i_in] > 0
    w = length * good
    n_out = stop - start
    wsum = np.bincount(i_out, weights=w, minlength=n_out)
    fsum = np.bincount(i_out, weights=w * np.asarray(flux, dtype=np.float64)[i_in], minlength=n_out)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_in = np.where(good, 1.0 / np.asarray(ivar, dtype=np.float64)[i_in], 0.0)
        vsum = np.bincount(i_out, weights=w**2 * var_in, minlength=n_out)
        out_flux = np.where(wsum > 0, fsum / wsum, 0.0)
        out_var = np.where(wsum > 0, vsum / wsum**2, np.inf)
        # An output pixel only partly covered by good input is kept if >= half is covered.
        covered = wsum >= 0.5 * LOGLAM_STEP
        out_ivar = np.where(covered & (out_var > 0), 1.0 / out_var, 0.0)
    return start, out_flux.astype(np.float32), out_ivar.astype(np.float32)


def to_sdss_grid(loglam: np.ndarray, flux: np.ndarray, ivar: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, bool]:
    """(start_index, flux, ivar, resampled) for a spectrum on any wavelength grid."""
    if is_on_grid(loglam):
        return int(grid_index(loglam[0])), flux.astype(np.float32), ivar.astype(np.float32), False
    start, f, iv = resample(loglam, flux, ivar)
    return start, f, iv, True


def median_snr(start_index: int, flux: np.ndarray, ivar: np.ndarray, z: float, rest_range=(1420.0, 1480.0)) -> float:
    """Median S/N per pixel over a continuum window redward of Lyman alpha (rest frame);
    over all good pixels if the window is not covered."""
    wave_rest = 10 ** grid_loglam(start_index, flux.size) / (1.0 + z)
    good = ivar > 0
    window = good & (wave_rest >= rest_range[0]) & (wave_rest <= rest_range[1])
    use = window if window.sum() >= 10 else good
    if not use.any():
        return 0.0
    return float(np.median(flux[use] * np.sqrt(ivar[use])))
