"""Reading FITS images and SDSS spec-lite files into validated arrays (no Django).

Headers are parsed by astropy. Binary-table data of spec-lite files is viewed directly
with numpy (``np.frombuffer`` at the HDU's data offset): astropy's table HDU builds a
Column object per column, which makes a spec-lite file (and its 100+ column SPECOBJ row)
cost ~7 ms to open and would cap the ingest well below 200 spectra/s. Tables that use
scaled or variable-length columns fall back to astropy's own reader.
"""

import functools
import hashlib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

SDSS_LOGLAM_STEP = 1e-4
SDSS_FLUX_UNIT = 1e-17 * u.erg / u.s / u.cm**2 / u.AA
# SPPIXMASK bits that make a pixel unusable: NOPLUG, BADTRACE, BADFLAT, BADARC,
# MANYBADCOLUMNS, MANYREJECTED (0-5), FULLREJECT (18), NODATA (24).
SDSS_BAD_PIXEL_BITS = sum(1 << b for b in (0, 1, 2, 3, 4, 5, 18, 24))

_PSF_KEYS = ("PSF_FWHM", "PSFFWHM", "FWHM_PSF", "SEEING")
_ZP_KEYS = ("MAGZERO", "MAGZP", "ZEROPT", "ZP", "PHOTZP")
_FILTER_KEYS = ("FILTER", "FILTER1", "FILTNAM1", "FILTNAME", "BAND")
_PIXSCALE_KEYS = ("PIXSCALE", "PIXSCAL1", "PIXSCAL", "SECPIX")


class FitsProblem(Exception):
    """A file that cannot be used; the message says why (the caller adds the file name)."""


@dataclass
class ImageFile:
    data: np.ndarray  # float32 (height, width); NaN where masked
    band: str | None
    pixel_scale_arcsec: float | None
    psf_fwhm_arcsec: float | None
    zero_point_ab: float | None
    instrument: str


@dataclass
class SpecLite:
    plate: int
    mjd: int
    fiber: int
    ra: float
    dec: float
    z: float
    z_err: float | None
    thing_id: int | None
    object_class: str
    loglam: np.ndarray  # float64, log10(Angstrom)
    flux: np.ndarray  # float32, 1e-17 erg/s/cm^2/A
    ivar: np.ndarray  # float32, inverse variance of flux; 0 = masked
    extra: dict = field(default_factory=dict)


def _open(raw: bytes) -> fits.HDUList:
    if len(raw) < 2880 or not raw.startswith(b"SIMPLE  ="):
        raise FitsProblem("not a FITS file (no SIMPLE card at the start)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fits.open(io.BytesIO(raw), lazy_load_hdus=True, memmap=False)
    except Exception as exc:  # astropy raises OSError, ValueError, KeyError...
        raise FitsProblem(f"unreadable FITS: {exc}") from exc


def _data_offset(hdul: fits.HDUList, index: int) -> int:
    """Byte offset of an HDU's data. ``fileinfo()`` re-serialises the whole header to find
    it (~1 ms a file); the HDU already knows it from reading."""
    offset = getattr(hdul[index], "_data_offset", None)
    return int(offset) if offset is not None else int(hdul.fileinfo(index)["datLoc"])


def _header_float(header: fits.Header, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = header.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise FitsProblem(f"header keyword {key}={value!r} is not a number") from None
        if np.isfinite(number):
            return number
    return None


@functools.lru_cache(maxsize=256)
def _wcs_pixel_scale(cards: tuple) -> float | None:
    header = fits.Header(list(cards))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2)
    if not wcs.has_celestial:
        return None
    scales = proj_plane_pixel_scales(wcs.celestial)
    unit = wcs.celestial.world_axis_units[0] or "deg"
    # Rounded to 7 significant digits: a CD matrix of 0.06"/3600 must read as 0.06".
    return float(f"{np.sqrt(scales[0] * scales[1]) * u.Unit(unit).to(u.arcsec):.7g}")


# Only the keywords that set the pixel scale are parsed (astropy parses a card's value on
# first access, and parsing every card of every cutout header would dominate the ingest).
_WCS_KEYS = (
    "CTYPE1",
    "CTYPE2",
    "CUNIT1",
    "CUNIT2",
    "CDELT1",
    "CDELT2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
    "PC1_1",
    "PC1_2",
    "PC2_1",
    "PC2_2",
)


def pixel_scale_arcsec(header: fits.Header) -> float | None:
    """Pixel scale from the celestial WCS (CD, PC+CDELT or CDELT), else a PIXSCALE keyword."""
    cards = tuple((k, header[k]) for k in _WCS_KEYS if k in header)
    if any(k.startswith("CTYPE") for k, _ in cards):
        scale = _wcs_pixel_scale(cards)
        if scale:
            return scale
    return _header_float(header, _PIXSCALE_KEYS)


def _quiet(func):
    """Runs a reader with astropy's warnings silenced: problems are raised as FitsProblem."""

    @functools.wraps(func)
    def wrapper(raw: bytes):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return func(raw)

    return wrapper


@_quiet
def read_image_fits(raw: bytes) -> ImageFile:
    """The first 2-D image in a FITS file, with the instrument facts its header gives."""
    hdul = _open(raw)
    try:
        for index, hdu in enumerate(hdul):
            if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
                continue
            shape = tuple(s for s in (hdu.shape or ()) if s != 1)
            if len(shape) != 2:
                continue
            if not isinstance(hdu, fits.CompImageHDU):
                expected = abs(hdu.header["BITPIX"]) // 8 * int(np.prod(hdu.shape))
                if _data_offset(hdul, index) + expected > len(raw):
                    raise FitsProblem("truncated file: the image data is incomplete")
            try:
                data = np.asarray(hdu.data, dtype=np.float32).reshape(shape)
            except Exception as exc:
                raise FitsProblem(f"image data unreadable: {exc}") from exc
            header = hdu.header if index == 0 else hdul[0].header.copy()
            if index:
                header.update(hdu.header)
            break
        else:
            raise FitsProblem("no 2-D image HDU")
    finally:
        hdul.close()
    data = np.where(np.isfinite(data), data, np.nan).astype(np.float32, copy=False)
    if not np.isfinite(data).any():
        raise FitsProblem("image has no finite pixels")
    band = next((str(header[k]).strip() for k in _FILTER_KEYS if header.get(k)), None)
    return ImageFile(
        data=data,
        band=band or None,
        pixel_scale_arcsec=pixel_scale_arcsec(header),
        psf_fwhm_arcsec=_header_float(header, _PSF_KEYS),
        zero_point_ab=_header_float(header, _ZP_KEYS),
        instrument=str(header.get("INSTRUME", "")).strip(),
    )


_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCM])\s*$")
_NUMPY_CODE = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


def _bintable_dtype(header: fits.Header) -> np.dtype | None:
    """numpy dtype of a binary table's rows, or None if astropy must read it."""
    fields = []
    for i in range(1, int(header["TFIELDS"]) + 1):
        if f"TSCAL{i}" in header or f"TZERO{i}" in header:
            return None
        match = _TFORM.match(str(header[f"TFORM{i}"]))
        if not match:
            return None  # variable-length arrays (P/Q) and others
        repeat, code = int(match.group(1) or 1), match.group(2)
        name = str(header.get(f"TTYPE{i}", f"col{i}")).strip()
        if code == "A":
            fields.append((name, f"S{repeat}"))
        elif code in _NUMPY_CODE:
            fields.append((name, _NUMPY_CODE[code], (repeat,)) if repeat != 1 else (name, _NUMPY_CODE[code]))
        else:
            return None
    dtype = np.dtype(fields)
    return dtype if dtype.itemsize == int(header["NAXIS1"]) else None


class _Table:
    """Case-insensitive column access to one binary-table HDU."""

    def __init__(self, data, header: fits.Header):
        self.data = data
        self.header = header
        self.names = {name.lower(): name for name in data.dtype.names}

    def __len__(self) -> int:
        return len(self.data)

    def find(self, *candidates: str) -> str | None:
        return next((self.names[c] for c in candidates if c in self.names), None)

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.data[name])

    def unit(self, name: str) -> str | None:
        for i in range(1, int(self.header["TFIELDS"]) + 1):
            if str(self.header.get(f"TTYPE{i}", "")).strip() == name:
                return self.header.get(f"TUNIT{i}")
        return None


def _read_table(hdul: fits.HDUList, raw: bytes, extname: str) -> _Table:
    try:
        index = hdul.index_of(extname)
    except KeyError:
        raise FitsProblem(f"missing HDU {extname}") from None
    hdu = hdul[index]
    if not isinstance(hdu, fits.BinTableHDU):
        raise FitsProblem(f"HDU {extname} is not a binary table")
    header = hdu.header
    n_rows, row_bytes = int(header["NAXIS2"]), int(header["NAXIS1"])
    offset = _data_offset(hdul, index)
    if offset + n_rows * row_bytes > len(raw):
        raise FitsProblem(f"truncated file: HDU {extname} data is incomplete")
    dtype = _bintable_dtype(header)
    if dtype is not None:
        data = np.frombuffer(raw, dtype=dtype, count=n_rows, offset=offset)
    else:
        data = np.asarray(hdu.data)
    return _Table(data, header)


def _first_table(hdul: fits.HDUList, raw: bytes, *names: str) -> _Table:
    for name in names:
        if name in hdul:
            return _read_table(hdul, raw, name)
    raise FitsProblem(f"missing HDU {' or '.join(names)}")


def _scalar(table: _Table, *names: str, required: bool = True):
    column = table.find(*names)
    if column is None:
        if required:
            raise FitsProblem(f"column {names[0].upper()} missing from the object table")
        return None
    value = table.column(column)[0]
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    return value.item() if hasattr(value, "item") else value


def _wavelength_to_loglam(table: _Table) -> np.ndarray:
    column = table.find("loglam")
    if column is not None:
        loglam = table.column(column).astype(np.float64)
        if np.nanmin(loglam) < 3.0 or np.nanmax(loglam) > 4.7:
            raise FitsProblem(
                "loglam outside 3.0-4.7 (1,000-50,000 A): wrong units? "
                "loglam must be log10 of the wavelength in Angstrom"
            )
        return loglam
    column = table.find("wave", "wavelength", "lambda", "lam")
    if column is None:
        raise FitsProblem("no wavelength column (loglam, or wave in Angstrom)")
    unit_text = table.unit(column) or "Angstrom"
    try:
        unit = u.Unit(unit_text)
        wave = (table.column(column).astype(np.float64) * unit).to_value(u.AA, u.spectral())
    except (ValueError, u.UnitsError) as exc:
        raise FitsProblem(f"wavelength column {column} has unusable unit {unit_text!r}: {exc}") from None
    if np.nanmin(wave) <= 0:
        raise FitsProblem(f"wavelength column {column} has non-positive values")
    return np.log10(wave)


def _flux_to_sdss_units(table: _Table, column: str, loglam: np.ndarray) -> tuple[np.ndarray, float]:
    """Flux in 1e-17 erg/s/cm^2/A and the factor applied (ivar is divided by its square)."""
    flux = table.column(column).astype(np.float64)
    unit_text = table.unit(column)
    if not unit_text:
        return flux, 1.0  # SDSS convention: no TUNIT, 1e-17 erg/s/cm^2/A
    try:
        unit = u.Unit(unit_text)
    except ValueError as exc:
        raise FitsProblem(f"flux unit {unit_text!r} not understood: {exc}") from None
    wave = 10**loglam * u.AA
    try:
        converted = (flux * unit).to_value(SDSS_FLUX_UNIT, u.spectral_density(wave))
    except u.UnitsError:
        raise FitsProblem(f"flux unit {unit_text!r} is not a spectral flux density (wrong units)") from None
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(flux != 0, converted / flux, 1.0)
    return converted, factor


@_quiet
def read_speclite(raw: bytes) -> SpecLite:
    """An SDSS spec-lite file: COADD (flux, loglam, ivar, and_mask) and SPECOBJ/SPALL."""
    hdul = _open(raw)
    try:
        coadd = _read_table(hdul, raw, "COADD")
        meta = _first_table(hdul, raw, "SPECOBJ", "SPALL")
    finally:
        hdul.close()
    if len(coadd) < 100:
        raise FitsProblem(f"COADD has {len(coadd)} pixels; a spectrum needs at least 100")
    if len(meta) < 1:
        raise FitsProblem("SPECOBJ has no rows")
    loglam = _wavelength_to_loglam(coadd)
    flux_col = coadd.find("flux")
    if flux_col is None:
        raise FitsProblem("column FLUX missing from COADD")
    flux, factor = _flux_to_sdss_units(coadd, flux_col, loglam)
    ivar_col = coadd.find("ivar")
    if ivar_col is not None:
        ivar = coadd.column(ivar_col).astype(np.float64) / np.square(factor)
    else:
        err_col = coadd.find("error", "err", "sigma", "noise")
        if err_col is None:
            raise FitsProblem("column IVAR (or ERROR) missing from COADD")
        err = coadd.column(err_col).astype(np.float64) * factor
        with np.errstate(divide="ignore"):
            ivar = np.where(err > 0, 1.0 / np.square(err), 0.0)
    if np.any(ivar < 0):
        raise FitsProblem("IVAR has negative values")
    if not np.all(np.diff(loglam) > 0):
        raise FitsProblem("wavelengths are not strictly increasing")
    bad = ~np.isfinite(flux) | ~np.isfinite(ivar)
    mask_col = coadd.find("and_mask")
    if mask_col is not None:
        bad |= (coadd.column(mask_col).astype(np.int64) & SDSS_BAD_PIXEL_BITS) != 0
    ivar = np.where(bad, 0.0, ivar)
    flux = np.where(np.isfinite(flux), flux, 0.0)
    if not np.any(ivar > 0):
        raise FitsProblem("no usable pixels (IVAR is zero everywhere)")

    plate = _scalar(meta, "plate", "plateid")
    mjd = _scalar(meta, "mjd")
    fiber = _scalar(meta, "fiberid", "fiber")
    ra = _scalar(meta, "plug_ra", "ra")
    dec = _scalar(meta, "plug_dec", "dec")
    z = _scalar(meta, "z", "z_qso", "z_vi")
    z_err = _scalar(meta, "z_err", "zerr", required=False)
    thing_id = _scalar(meta, "thing_id", required=False)
    object_class = _scalar(meta, "class", required=False) or ""
    for name, value in (("PLATE", plate), ("MJD", mjd), ("FIBERID", fiber)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise FitsProblem(f"{name}={value!r} is not a positive integer")
    for name, value in (("PLUG_RA", ra), ("PLUG_DEC", dec), ("Z", z)):
        if not isinstance(value, float | int) or not np.isfinite(value):
            raise FitsProblem(f"{name}={value!r} is not a finite number")
    if not 0.0 <= ra < 360.0:
        raise FitsProblem(f"PLUG_RA={ra} outside [0, 360)")
    if not -90.0 <= dec <= 90.0:
        raise FitsProblem(f"PLUG_DEC={dec} outside [-90, 90]")
    if not 0.0 <= z < 8.0:
        raise FitsProblem(f"Z={z} outside [0, 8)")
    return SpecLite(
        plate=int(plate),
        mjd=int(mjd),
        fiber=int(fiber),
        ra=float(ra),
        dec=float(dec),
        z=float(z),
        z_err=float(z_err) if z_err is not None and np.isfinite(z_err) and z_err >= 0 else None,
        thing_id=int(thing_id) if thing_id is not None and int(thing_id) > 0 else None,
        object_class=str(object_class)[:16],
        loglam=loglam,
        flux=flux.astype(np.float32),
        ivar=ivar.astype(np.float32),
    )


_KNOWN_CHECKSUMS: frozenset[str] = frozenset()


def _read_image_file(path: str) -> tuple[str, bytes, ImageFile | str | None]:
    raw = Path(path).read_bytes()
    checksum = hashlib.sha256(raw).hexdigest()
    if checksum in _KNOWN_CHECKSUMS:
        return checksum, raw, None
    try:
        return checksum, raw, read_image_fits(raw)
    except FitsProblem as exc:
        return checksum, raw, f"{path}: {exc}"


def read_image_files(paths: list[str], known_checksums: set[str], workers: int | None = None):
    """(checksum, raw bytes, ImageFile | problem message | None) per path, in order, read on
    every core. Files whose checksum is in ``known_checksums`` are not parsed (None)."""
    from catalog.ingest.parallel import parallel_map

    global _KNOWN_CHECKSUMS
    _KNOWN_CHECKSUMS = frozenset(known_checksums)  # inherited by the forked workers
    try:
        yield from parallel_map(_read_image_file, paths, workers)
    finally:
        _KNOWN_CHECKSUMS = frozenset()
