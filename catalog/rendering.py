"""Server-side renders: FITS pixels to PNG (astropy.visualization) and spectrum plots.

Renders are cached as files under GALAXYLAB_RENDER_CACHE, keyed by the image's checksum
and the render parameters, so a changed image never serves a stale render.
"""

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.visualization import (
    AsinhStretch,
    ImageNormalize,
    LinearStretch,
    LogStretch,
    PercentileInterval,
    SqrtStretch,
)
from django.conf import settings

from catalog.errors import ApplicationError

_CHECKSUM = re.compile(r"[0-9a-f]{64}")
STRETCHES = {"asinh": AsinhStretch, "linear": LinearStretch, "log": LogStretch, "sqrt": SqrtStretch}


@dataclass(frozen=True)
class RenderParams:
    """How to turn pixels into a PNG; validated from request parameters."""

    stretch: str = "asinh"
    contrast: float = 1.0  # > 1 brightens faint structure
    percentile: float = 99.5
    zoom: int = 1  # 1: whole stamp; 2: central half, twice as large

    @classmethod
    def from_query(cls, query) -> "RenderParams":
        try:
            params = cls(
                stretch=query.get("stretch", "asinh"),
                contrast=float(query.get("contrast", 1.0)),
                percentile=float(query.get("percentile", 99.5)),
                zoom=int(query.get("zoom", 1)),
            )
        except ValueError:
            raise ApplicationError("contrast and percentile must be numbers, zoom 1 or 2") from None
        if params.stretch not in STRETCHES:
            raise ApplicationError(f"stretch must be one of {', '.join(STRETCHES)}")
        if not 0.1 <= params.contrast <= 20 or not 50 <= params.percentile <= 100 or params.zoom not in (1, 2):
            raise ApplicationError("contrast must be in [0.1, 20], percentile in [50, 100], zoom 1 or 2")
        return params

    @property
    def key(self) -> str:
        return f"{self.stretch}-c{self.contrast:g}-p{self.percentile:g}-z{self.zoom}"


def image_to_png(pixels: np.ndarray, params: RenderParams, out_size: int = 256) -> bytes:
    """Robust-interval, stretched 8-bit PNG of one image (north up: row 0 at the bottom)."""
    from PIL import Image

    data = np.asarray(pixels, dtype=np.float32)
    if params.zoom == 2:
        h, w = data.shape
        data = data[h // 4 : h - h // 4, w // 4 : w - w // 4]
    finite = np.isfinite(data)
    fill = float(np.median(data[finite])) if finite.any() else 0.0
    data = np.where(finite, data, fill)
    stretch = STRETCHES[params.stretch]()
    if params.stretch == "asinh":
        stretch = AsinhStretch(a=0.1 / params.contrast)
    norm = ImageNormalize(data, interval=PercentileInterval(params.percentile), stretch=stretch, clip=True)
    scaled = np.ma.filled(norm(data), 0.0)
    if params.stretch != "asinh" and params.contrast != 1.0:
        scaled = np.clip(scaled * params.contrast, 0, 1)
    image = Image.fromarray((np.flipud(scaled) * 255).astype(np.uint8), mode="L")
    image = image.resize((out_size, out_size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _cache_path(kind: str, checksum: str, params: RenderParams) -> Path:
    return Path(settings.GALAXYLAB_RENDER_CACHE) / kind / checksum[:2] / f"{checksum}-{params.key}.png"


def read_cached(kind: str, checksum: str, params: RenderParams) -> bytes | None:
    """The cached PNG if it was rendered already (no database needed), else None."""
    if not _CHECKSUM.fullmatch(checksum):
        return None
    try:
        return _cache_path(kind, checksum, params).read_bytes()
    except FileNotFoundError:
        return None


def cached_render(kind: str, checksum: str, params: RenderParams, make) -> bytes:
    """The cached PNG for (kind, checksum, params), made by ``make()`` on a miss."""
    cached = read_cached(kind, checksum, params)
    if cached is not None:
        return cached
    path = _cache_path(kind, checksum, params)
    png = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.tmp")
    tmp.write_bytes(png)
    tmp.replace(path)  # atomic: concurrent renders of the same image never see half a file
    return png


def spectrum_png(loglam: np.ndarray, flux: np.ndarray, ivar: np.ndarray, z_qso: float, title: str) -> bytes:
    """A spectrum plot with its error and the Lyman-alpha/beta positions marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    wave = 10**loglam
    good = ivar > 0
    error = np.where(good, 1 / np.sqrt(np.where(good, ivar, 1)), np.nan)
    fig = Figure(figsize=(10, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(wave, np.where(good, flux, np.nan), lw=0.5, color="k", label="flux")
    ax.plot(wave, error, lw=0.5, color="tab:red", label="1 sigma error")
    for rest, label in ((1215.67, "Ly$\\alpha$"), (1025.72, "Ly$\\beta$"), (911.75, "LL")):
        obs = rest * (1 + z_qso)
        if wave[0] < obs < wave[-1]:
            ax.axvline(obs, color="tab:blue", lw=0.8, ls="--")
            ax.text(obs, 1.0, label, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    finite = flux[good]
    if finite.size:
        lo, hi = np.percentile(finite, [1, 99.5])
        ax.set_ylim(min(lo, 0) - 0.1 * (hi - lo), hi + 0.2 * (hi - lo))
    ax.set_xlabel("observed wavelength [$\\AA$]")
    ax.set_ylabel("$f_\\lambda$ [$10^{-17}$ erg s$^{-1}$ cm$^{-2}$ $\\AA^{-1}$]")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def cutout_png(cutout, params: RenderParams) -> bytes:
    from catalog.selectors import cutout_pixels

    return cached_render("cutouts", cutout.checksum, params, lambda: image_to_png(cutout_pixels(cutout), params))


def mock_image_png(image, params: RenderParams) -> bytes:
    from catalog.selectors import mock_image_pixels

    return cached_render("mock_images", image.checksum, params, lambda: image_to_png(mock_image_pixels(image), params))


def quasar_spectrum_png(spectrum) -> bytes:
    from catalog.selectors import spectra_arrays
    from catalog.spectral_grid import grid_loglam

    def make() -> bytes:
        start, flux, ivar = spectra_arrays(spectrum_ids=[spectrum.pk])[0]
        title = f"{spectrum}  z_qso = {spectrum.z_qso:.3f}  S/N = {spectrum.snr:.1f}"
        return spectrum_png(grid_loglam(start, flux.size), flux, ivar, spectrum.z_qso, title)

    return cached_render("spectra", spectrum.checksum, RenderParams(stretch="linear"), make)


def png_url(image) -> str:
    """URL of a cutout's or mock image's preview. It carries the image's checksum, so the view
    answers from the render cache without touching the database, and browsers may cache it
    for good (a changed image has a new checksum, hence a new URL)."""
    from django.urls import reverse

    from catalog.models import Cutout

    name = "catalog:cutout-png" if isinstance(image, Cutout) else "catalog:mock-image-png"
    return f"{reverse(name, args=[image.pk])}?v={image.checksum}"
