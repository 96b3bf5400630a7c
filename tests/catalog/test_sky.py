"""HEALPix cone ranges must never miss an object inside the cone."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from catalog.sky import HEALPIX_ORDER, cone_pixel_ranges, sky_columns, unit_vectors


def _inside_ranges(pix, ranges):
    return np.any([(pix >= lo) & (pix < hi) for lo, hi in ranges], axis=0)


@pytest.mark.parametrize(
    ("ra", "dec", "radius"),
    [
        (53.1, -27.8, 0.01),
        (0.001, 10.0, 0.5),
        (359.99, -5.0, 2.0),
        (120.0, 89.9, 1.0),
        (200.0, -89.95, 0.3),
        (10.0, 0.0, 45.0),
    ],
)
def test_cone_ranges_cover_every_object_inside(ra, dec, radius):
    rng = np.random.default_rng(1)
    centre = SkyCoord(ra, dec, unit="deg")
    # Points scattered around the centre, some inside and some just outside.
    sep = radius * np.sqrt(rng.random(4000)) * 1.5
    pa = rng.uniform(0, 360, 4000)
    points = centre.directional_offset_by(pa * u.deg, sep * u.deg)
    cols = sky_columns(points.ra.deg, points.dec.deg)
    inside = points.separation(centre).deg <= radius
    covered = _inside_ranges(cols.healpix, cone_pixel_ranges(ra, dec, radius))
    assert inside.sum() > 100
    assert np.all(covered[inside]), "a point inside the cone lies outside the pixel ranges"
    # The ranges stay selective: the sky they cover is a small multiple of the cone's area.
    ranges = cone_pixel_ranges(ra, dec, radius)
    covered_sr = sum(hi - lo for lo, hi in ranges) * 4 * np.pi / (12 * 4**HEALPIX_ORDER)
    cone_sr = 2 * np.pi * (1 - np.cos(np.radians(radius)))
    assert covered_sr < 40 * cone_sr


def test_unit_vectors_and_index_range():
    cols = sky_columns(np.array([0.0, 90.0, 359.999]), np.array([0.0, 0.0, -90.0]))
    assert np.allclose(cols.cx**2 + cols.cy**2 + cols.cz**2, 1.0)
    assert np.all((cols.healpix >= 0) & (cols.healpix < 12 * 4**HEALPIX_ORDER))
    x, y, z = unit_vectors(np.array([90.0]), np.array([0.0]))
    assert np.allclose([x[0], y[0], z[0]], [0.0, 1.0, 0.0], atol=1e-12)
