"""Cone searches in the database agree with astropy; packed reads agree with the FITS files."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from django.core.management import call_command

from catalog.errors import ApplicationError
from catalog.models import Galaxy, QuasarSpectrum, Survey
from catalog.selectors import galaxy_cone_search, spectrum_cone_search
from catalog.sky import sky_columns

pytestmark = pytest.mark.django_db


@pytest.fixture
def scattered_galaxies():
    survey = Survey.objects.create(name="sky", kind=Survey.Kind.IMAGING)
    rng = np.random.default_rng(3)
    ra = np.concatenate([rng.uniform(358, 360, 300), rng.uniform(0, 2, 300), rng.uniform(0, 360, 300)]) % 360
    dec = np.concatenate([rng.uniform(-2, 2, 600), np.degrees(np.arcsin(rng.uniform(-1, 1, 300)))])
    cols = sky_columns(ra, dec)
    Galaxy.objects.bulk_create(
        Galaxy(
            survey=survey,
            source_id=str(i),
            ra=ra[i],
            dec=dec[i],
            healpix=int(cols.healpix[i]),
            cx=cols.cx[i],
            cy=cols.cy[i],
            cz=cols.cz[i],
        )
        for i in range(ra.size)
    )
    return SkyCoord(ra, dec, unit="deg")


@pytest.mark.parametrize(
    ("ra", "dec", "radius"), [(0.0, 0.0, 1.0), (359.5, 1.0, 0.7), (1.0, -1.0, 0.05), (180.0, 45.0, 30.0)]
)
def test_galaxy_cone_search_matches_astropy(scattered_galaxies, ra, dec, radius):
    expected = {
        str(i) for i in np.flatnonzero(scattered_galaxies.separation(SkyCoord(ra, dec, unit="deg")).deg <= radius)
    }
    got = set(galaxy_cone_search(ra=ra, dec=dec, radius_deg=radius).values_list("source_id", flat=True))
    assert got == expected
    assert expected or radius < 0.1


@pytest.mark.parametrize(
    ("ra", "dec", "radius", "message"),
    [
        (360.0, 0, 1, "ra 360.0 outside"),
        (0, 91, 1, "dec 91 outside"),
        (0, 0, 0, "radius 0 outside"),
        (float("nan"), 0, 1, "ra must be"),
    ],
)
def test_bad_cones(ra, dec, radius, message):
    with pytest.raises(ApplicationError, match=message):
        galaxy_cone_search(ra=ra, dec=dec, radius_deg=radius)


def test_spectrum_cone_search(mock_spectra):
    call_command("ingest_spectra", str(mock_spectra / "spectra"), survey="q", verbosity=0)
    target = QuasarSpectrum.objects.order_by("pk")[3]
    assert list(spectrum_cone_search(ra=target.ra, dec=target.dec, radius_deg=1 / 3600)) == [target]
