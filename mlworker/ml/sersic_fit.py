"""The reference structural measurement: a single Sersic profile fitted to a cutout the way
GALFIT does it, with astropy.modeling (no Django).

The model is astropy's ``Sersic2D`` evaluated on a grid oversampled 2x over the stamp and 8x
within a box around the centre (where a cuspy profile changes within a pixel), convolved with
the PSF (a Moffat of the band's FWHM) on that 2x grid, then binned to pixels. A bounded
trust-region least-squares fit (``TRFLSQFitter``) weights each pixel by its noise (the sky's,
measured on the stamp border, plus the source's Poisson noise when the exposure time is
known), starting from the image's moments. Conventions as the emulator's truth: r_e along
the major axis, total magnitude of the untruncated profile, q = b/a, position angle
counter-clockwise from +x. A fit that raises, does not converge or ends on a bound of n or
r_e is a failure, recorded with its reason, never a number.
"""

import math
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

N_BOUNDS = (0.2, 8.0)
R_BOUNDS_PX = (0.3, 80.0)
MAX_CENTRE_SHIFT_PX = 4.0


@dataclass
class FitSettings:
    pixel_scale_arcsec: float = 0.06
    psf_fwhm_arcsec: float = 0.18
    psf_moffat_beta: float = 3.0
    zero_point_ab: float = 25.95
    exposure_time_s: float | None = None  # source Poisson noise in the weights when known
    oversample: int = 2
    centre_oversample: int = 8
    centre_box_px: int = 6  # half-width of the finely sampled box
    max_iterations: int = 500
    # CANDELS-like mosaics are sky-subtracted: the default fits the stamp as it is. With
    # True, the median of the stamp's border is removed first (it holds the wings of a
    # large galaxy too, so its n and r_e come out low).
    subtract_border_sky: bool = False


@dataclass
class SersicFit:
    ok: bool
    message: str = ""
    mag: float = math.nan
    r_e_arcsec: float = math.nan  # along the major axis
    sersic_n: float = math.nan
    q: float = math.nan
    pa_deg: float = math.nan
    x0_px: float = math.nan  # offset of the centre from the stamp's centre
    y0_px: float = math.nan
    chi2_nu: float = math.nan
    errors: dict = field(default_factory=dict)
    n_evaluations: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def moffat(x, y, fwhm, beta: float) -> np.ndarray:
    """A round Moffat profile of the given FWHM (same units as x, y), peak 1, at the origin."""
    from astropy.modeling.functional_models import Moffat2D

    gamma = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    return Moffat2D.evaluate(x, y, 1.0, 0.0, 0.0, gamma, beta)


def sersic_b(n):
    """b_n such that r_e encloses half the light: gammaincinv(2n, 1/2)."""
    from scipy.special import gammaincinv

    return gammaincinv(2 * n, 0.5)


def sersic_total_flux(amplitude, r_eff, n, q):
    """Total flux of an untruncated elliptical Sersic profile with surface brightness
    ``amplitude`` at the major-axis half-light radius ``r_eff`` (Graham & Driver 2005)."""
    from scipy.special import gamma

    b = sersic_b(n)
    return amplitude * r_eff**2 * q * 2 * np.pi * n * np.exp(b) * b ** (-2 * n) * gamma(2 * n)


class _Renderer:
    """PSF-convolved, pixel-integrated Sersic2D images of one stamp shape."""

    def __init__(self, shape: tuple[int, int], settings: FitSettings, centre: tuple[float, float]):
        self.shape = shape
        h, w = shape
        os_ = settings.oversample
        self.os = os_
        sub = (np.arange(os_) + 0.5) / os_ - 0.5
        self.xs = (np.arange(w)[:, None] + sub[None, :]).ravel()  # 2x grid, pixel coordinates
        self.ys = (np.arange(h)[:, None] + sub[None, :]).ravel()
        self.xx, self.yy = np.meshgrid(self.xs, self.ys)
        # the finely sampled box, in 2x-grid cells
        fine = settings.centre_oversample
        self.ratio = fine // os_
        cx, cy = int(round(centre[0])), int(round(centre[1]))
        b = settings.centre_box_px
        self.box = (max(cy - b, 0) * os_, min(cy + b + 1, h) * os_, max(cx - b, 0) * os_, min(cx + b + 1, w) * os_)
        y0, y1, x0, x1 = self.box
        fsub = (np.arange(self.ratio) + 0.5) / self.ratio - 0.5
        fx = (self.xs[x0:x1, None] + fsub[None, :] / os_).ravel()
        fy = (self.ys[y0:y1, None] + fsub[None, :] / os_).ravel()
        self.fxx, self.fyy = np.meshgrid(fx, fy)
        # the PSF on the 2x grid, normalised, within +-4 FWHM
        fwhm_sub = settings.psf_fwhm_arcsec / settings.pixel_scale_arcsec * os_
        half = int(math.ceil(4 * fwhm_sub))
        k = np.arange(-half, half + 1)
        kx, ky = np.meshgrid(k, k)
        psf = moffat(kx, ky, fwhm_sub, settings.psf_moffat_beta)
        psf /= psf.sum()
        from scipy import fft

        self.fft = fft
        self.pad = half
        self.fft_shape = tuple(fft.next_fast_len(s + 2 * half, real=True) for s in (h * os_, w * os_))
        self.psf_ft = fft.rfft2(psf, self.fft_shape)
        self.evaluations = 0

    def __call__(self, amplitude, r_eff, n, x_0, y_0, ellip, theta) -> np.ndarray:
        from astropy.modeling.functional_models import Sersic2D

        self.evaluations += 1
        args = (amplitude, r_eff, n, x_0, y_0, ellip, theta)
        grid = Sersic2D.evaluate(self.xx, self.yy, *args)
        y0, y1, x0, x1 = self.box
        r = self.ratio
        fine = Sersic2D.evaluate(self.fxx, self.fyy, *args)
        grid[y0:y1, x0:x1] = fine.reshape(y1 - y0, r, x1 - x0, r).mean(axis=(1, 3))
        conv = self.fft.irfft2(self.fft.rfft2(grid, self.fft_shape) * self.psf_ft, self.fft_shape)
        p = self.pad
        conv = conv[p : p + grid.shape[0], p : p + grid.shape[1]]
        h, w = self.shape
        return conv.reshape(h, self.os, w, self.os).mean(axis=(1, 3))


def _make_model(renderer: _Renderer, start: dict):
    from astropy.modeling import Fittable2DModel, Parameter

    class ConvolvedSersic2D(Fittable2DModel):
        """astropy Sersic2D, PSF-convolved and pixel-integrated; inputs are pixel indices."""

        amplitude = Parameter(default=1.0, bounds=(1e-12, None))
        r_eff = Parameter(default=3.0, bounds=R_BOUNDS_PX)
        n = Parameter(default=2.0, bounds=N_BOUNDS)
        x_0 = Parameter(default=0.0)
        y_0 = Parameter(default=0.0)
        ellip = Parameter(default=0.2, bounds=(0.0, 0.95))
        theta = Parameter(default=0.0, bounds=(-2 * np.pi, 2 * np.pi))

        def evaluate(self, x, y, amplitude, r_eff, n, x_0, y_0, ellip, theta):
            image = renderer(*(float(np.ravel(v)[0]) for v in (amplitude, r_eff, n, x_0, y_0, ellip, theta)))
            return image[y.astype(int), x.astype(int)]

    model = ConvolvedSersic2D(**start)
    model.x_0.bounds = (start["x_0"] - MAX_CENTRE_SHIFT_PX, start["x_0"] + MAX_CENTRE_SHIFT_PX)
    model.y_0.bounds = (start["y_0"] - MAX_CENTRE_SHIFT_PX, start["y_0"] + MAX_CENTRE_SHIFT_PX)
    return model


def _border_stats(image: np.ndarray, width: int = 6) -> tuple[float, float]:
    mask = np.zeros(image.shape, dtype=bool)
    mask[:width], mask[-width:], mask[:, :width], mask[:, -width:] = True, True, True, True
    border = image[mask]
    sky = float(np.median(border))
    sigma = float(1.4826 * np.median(np.abs(border - sky)))
    return sky, sigma if sigma > 0 else float(np.std(border) or 1.0)


def starting_values(image: np.ndarray, sigma: float) -> dict:
    """From the image's light: centroid, second moments (ellipticity and angle), the radius
    enclosing half the flux within 25 pixels, and n = 2."""
    h, w = image.shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    near = (xx - cx) ** 2 + (yy - cy) ** 2 <= 25**2
    light = np.where(near & (image > 2 * sigma), image, 0.0)
    if light.sum() <= 0:
        light = np.where(near, np.clip(image, 0, None), 0.0)
    total = light.sum()
    if total > 0:
        x0, y0 = (light * xx).sum() / total, (light * yy).sum() / total
        if abs(x0 - cx) > MAX_CENTRE_SHIFT_PX or abs(y0 - cy) > MAX_CENTRE_SHIFT_PX:
            x0, y0 = cx, cy
        dx, dy = xx - x0, yy - y0
        mxx, myy, mxy = ((light * d).sum() / total for d in (dx * dx, dy * dy, dx * dy))
        trace = mxx + myy
        e_mag = math.sqrt((mxx - myy) ** 2 + 4 * mxy**2) / trace if trace > 0 else 0.0
        q = math.sqrt(max((1 - e_mag) / (1 + e_mag), 0.05))
        theta = 0.5 * math.atan2(2 * mxy, mxx - myy)
    else:
        x0, y0, q, theta = cx, cy, 1.0, 0.0
    r = np.hypot(xx - x0, yy - y0)
    flux_in = np.clip(image, 0, None)[near]
    order = np.argsort(r[near])
    cumulative = np.cumsum(flux_in[order])
    flux = float(max(image[near].sum(), cumulative[-1] * 0.5, 1e-6))
    r_half_circ = float(r[near][order][np.searchsorted(cumulative, 0.5 * cumulative[-1])]) if cumulative[-1] > 0 else 3
    r_eff = float(np.clip(max(r_half_circ, 1.0) / math.sqrt(max(q, 0.2)), 1.0, 40.0))
    n = 2.0
    amplitude = flux / sersic_total_flux(1.0, r_eff, n, q)
    return {"amplitude": amplitude, "r_eff": r_eff, "n": n, "x_0": x0, "y_0": y0, "ellip": 1 - q, "theta": theta}


def fit_sersic(image: np.ndarray, settings: FitSettings | None = None) -> SersicFit:
    """Fits one stamp in e-/s (sky-subtracted, unless ``settings.subtract_border_sky``)."""
    from astropy.modeling.fitting import TRFLSQFitter

    settings = settings or FitSettings()
    started = time.perf_counter()
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or not np.isfinite(image).any():
        return SersicFit(ok=False, message="not a 2-D image with finite pixels")
    sky, sigma_sky = _border_stats(np.nan_to_num(image, nan=np.nanmedian(image)))
    data = image - sky if settings.subtract_border_sky else image
    finite = np.isfinite(data)
    data = np.where(finite, data, 0.0)
    variance = np.full(data.shape, sigma_sky**2)
    if settings.exposure_time_s:
        variance = variance + np.clip(data, 0, None) / settings.exposure_time_s
    weights = np.where(finite, 1 / np.sqrt(variance), 0.0)
    start = starting_values(data, sigma_sky)
    renderer = _Renderer(data.shape, settings, (start["x_0"], start["y_0"]))
    model = _make_model(renderer, start)
    yy, xx = np.mgrid[: data.shape[0], : data.shape[1]]
    fitter = TRFLSQFitter(calc_uncertainties=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = fitter(model, xx, yy, data, weights=weights, maxiter=settings.max_iterations)
    except Exception as exc:  # noqa: BLE001 - any failure of the fit is recorded as one
        return SersicFit(
            ok=False,
            message=f"fit raised {type(exc).__name__}: {exc}",
            n_evaluations=renderer.evaluations,
            seconds=time.perf_counter() - started,
        )
    info = fitter.fit_info or {}
    values = {name: float(getattr(fitted, name).value) for name in fitted.param_names}
    residual = (data - fitted(xx, yy)) * weights
    dof = max(int(finite.sum()) - len(values), 1)
    q = 1 - values["ellip"]
    flux = float(sersic_total_flux(values["amplitude"], values["r_eff"], values["n"], q))
    h, w = data.shape
    result = SersicFit(
        ok=True,
        mag=settings.zero_point_ab - 2.5 * math.log10(flux) if flux > 0 else math.nan,
        r_e_arcsec=values["r_eff"] * settings.pixel_scale_arcsec,
        sersic_n=values["n"],
        q=q,
        pa_deg=math.degrees(values["theta"]) % 180.0,
        x0_px=values["x_0"] - (w - 1) / 2,
        y0_px=values["y_0"] - (h - 1) / 2,
        chi2_nu=float((residual**2).sum() / dof),
        n_evaluations=renderer.evaluations,
        seconds=time.perf_counter() - started,
    )
    cov = info.get("param_cov")
    if cov is not None and np.all(np.isfinite(cov)):
        err = dict(zip(fitted.param_names, np.sqrt(np.clip(np.diag(cov), 0, None)), strict=False))
        result.errors = {
            "sersic_n": float(err.get("n", math.nan)),
            "r_e_arcsec": float(err.get("r_eff", math.nan) * settings.pixel_scale_arcsec),
            "q": float(err.get("ellip", math.nan)),
        }
    status = info.get("status")
    problems = []
    if status is not None and status <= 0:
        problems.append(f"did not converge ({info.get('message', 'status ' + str(status))})")
    for name, (lo, hi), label in (("n", N_BOUNDS, "n"), ("r_eff", R_BOUNDS_PX, "r_e")):
        v = values[name]
        if v <= lo * 1.001 or v >= hi * 0.999:
            problems.append(f"{label} ended on its bound ({v:.3g})")
    if not all(math.isfinite(v) for v in values.values()) or not math.isfinite(result.mag):
        problems.append("non-finite parameters")
    if problems:
        result.ok = False
        result.message = "; ".join(problems)
    return result
