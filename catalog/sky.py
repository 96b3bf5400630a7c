"""Sky positions: the HEALPix index and unit vectors behind fast cone searches (no Django).

Every object with a position stores its NESTED HEALPix pixel at ``HEALPIX_ORDER`` and its
unit vector. A cone search turns the cone into ranges of fine pixels (coarse pixels that
touch the cone, each one a contiguous range at the fine order), which a B-tree index
answers, and then keeps the rows whose unit vector lies within the radius exactly.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy_healpix import HEALPix

HEALPIX_ORDER = 20  # ~0.2 arcsec pixels; 12 * 4**20 pixels fit in a BIGINT
_FINE = HEALPix(nside=2**HEALPIX_ORDER, order="nested")


@dataclass(frozen=True)
class SkyColumns:
    """Derived position columns for a batch of objects."""

    healpix: np.ndarray  # int64 (n,)
    cx: np.ndarray  # float64 (n,)
    cy: np.ndarray
    cz: np.ndarray


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, ...]:
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cos_dec = np.cos(dec)
    return cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)


def sky_columns(ra_deg: np.ndarray, dec_deg: np.ndarray) -> SkyColumns:
    """HEALPix index and unit vector for validated positions (degrees)."""
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    pix = _FINE.lonlat_to_healpix(ra * u.deg, dec * u.deg).astype(np.int64)
    cx, cy, cz = unit_vectors(ra, dec)
    return SkyColumns(healpix=pix, cx=cx, cy=cy, cz=cz)


def cone_pixel_ranges(ra_deg: float, dec_deg: float, radius_deg: float) -> list[tuple[int, int]]:
    """Half-open ranges [lo, hi) of fine NESTED pixels that cover a cone.

    The cone is searched at the finest coarse order whose pixels are still about as
    large as the radius (a handful of pixels), and each coarse pixel maps to one
    contiguous block of fine pixels; adjacent blocks are merged.
    """
    if radius_deg >= 180.0:
        return [(0, 12 * 4**HEALPIX_ORDER)]
    order = HEALPIX_ORDER
    while order > 0 and HEALPix(nside=2**order).pixel_resolution.to_value(u.deg) < radius_deg:
        order -= 1
    coarse = HEALPix(nside=2**order, order="nested")
    pixels = np.sort(coarse.cone_search_lonlat(ra_deg * u.deg, dec_deg * u.deg, radius_deg * u.deg))
    shift = 4 ** (HEALPIX_ORDER - order)
    ranges: list[tuple[int, int]] = []
    for p in pixels.tolist():
        lo, hi = p * shift, (p + 1) * shift
        if ranges and ranges[-1][1] == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


def angular_separation_deg(ra1: np.ndarray, dec1: np.ndarray, ra2: float, dec2: float) -> np.ndarray:
    """Great-circle separation in degrees (Vincenty formula, stable at all distances)."""
    from astropy.coordinates import angular_separation

    return np.degrees(angular_separation(np.radians(ra1), np.radians(dec1), np.radians(ra2), np.radians(dec2)))
