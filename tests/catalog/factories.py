"""Builders of FITS files and catalogs for ingest tests (good ones and deliberately bad ones)."""

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table


def write_image(path: Path, data=None, **header) -> Path:
    data = np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32) if data is None else data
    hdu = fits.PrimaryHDU(data)
    defaults = {"FILTER": "F160W", "PIXSCALE": 0.06, "PSF_FWHM": 0.18, "MAGZERO": 25.95}
    for key, value in {**defaults, **header}.items():
        if value is not None:
            hdu.header[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path, overwrite=True)
    return path


def write_catalog(path: Path, rows: list[dict], fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = Table(rows=rows)
    if fmt:
        table.write(path, format=fmt, overwrite=True)
    else:
        table.write(path, overwrite=True)
    return path


def speclite(
    path: Path,
    *,
    plate=5000,
    mjd=56000,
    fiber=1,
    z=3.0,
    ra=150.0,
    dec=2.0,
    loglam=None,
    flux=None,
    ivar=None,
    wave_column=None,
    flux_unit=None,
    drop_hdu=None,
    drop_column=None,
    extname_meta="SPECOBJ",
) -> Path:
    n = 3000
    loglam = (35800 + np.arange(n)) * 1e-4 if loglam is None else loglam
    flux = np.full(len(loglam), 5.0, np.float32) if flux is None else flux
    ivar = np.full(len(loglam), 4.0, np.float32) if ivar is None else ivar
    cols = [fits.Column(name="flux", format="E", array=flux, unit=flux_unit)]
    if wave_column:
        name, values, unit = wave_column
        cols.append(fits.Column(name=name, format="D", array=values, unit=unit))
    else:
        cols.append(fits.Column(name="loglam", format="E", array=np.asarray(loglam, np.float32)))
    cols += [
        fits.Column(name="ivar", format="E", array=ivar),
        fits.Column(name="and_mask", format="J", array=np.zeros(len(loglam), np.int32)),
    ]
    cols = [c for c in cols if c.name != drop_column]
    coadd = fits.BinTableHDU.from_columns(cols, name="COADD")
    meta_cols = [
        fits.Column(name="PLATE", format="J", array=[plate]),
        fits.Column(name="MJD", format="J", array=[mjd]),
        fits.Column(name="FIBERID", format="J", array=[fiber]),
        fits.Column(name="PLUG_RA", format="D", array=[ra]),
        fits.Column(name="PLUG_DEC", format="D", array=[dec]),
        fits.Column(name="Z", format="E", array=[z]),
        fits.Column(name="CLASS", format="6A", array=["QSO"]),
    ]
    meta = fits.BinTableHDU.from_columns([c for c in meta_cols if c.name != drop_column], name=extname_meta)
    hdus = [fits.PrimaryHDU(), coadd, meta]
    hdus = [h for h in hdus if h.name != drop_hdu]
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def truncate(path: Path, keep_fraction: float = 0.6) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep_fraction)])
    return path
