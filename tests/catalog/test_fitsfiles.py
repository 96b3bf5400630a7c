"""FITS readers: good files parse, bad ones fail with a reason."""

import astropy.units as u
import numpy as np
import pytest

from catalog.ingest.fitsfiles import FitsProblem, read_image_fits, read_speclite
from tests.catalog.factories import speclite, truncate, write_image


def test_image_facts_from_header_and_wcs(tmp_path):
    path = write_image(
        tmp_path / "a.fits",
        PIXSCALE=None,
        CTYPE1="RA---TAN",
        CTYPE2="DEC--TAN",
        CD1_1=-0.06 / 3600,
        CD2_2=0.06 / 3600,
        CD1_2=0.0,
        CD2_1=0.0,
        CRVAL1=53.0,
        CRVAL2=-27.0,
        CRPIX1=16,
        CRPIX2=16,
    )
    image = read_image_fits(path.read_bytes())
    assert image.data.shape == (32, 32) and image.data.dtype == np.float32
    assert image.pixel_scale_arcsec == 0.06  # exactly: no floating-point residue from the CD matrix
    assert (image.band, image.psf_fwhm_arcsec, image.zero_point_ab) == ("F160W", 0.18, 25.95)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"hello, not a FITS file" * 200), "not a FITS file"),
        (lambda p: truncate(write_image(p)), "truncated"),
        (lambda p: write_image(p, data=np.full((16, 16), np.nan, np.float32)), "no finite pixels"),
        (lambda p: write_image(p, data=np.zeros(50, np.float32)), "no 2-D image"),
        (lambda p: write_image(p, PSF_FWHM="wide"), "not a number"),
    ],
)
def test_bad_images(tmp_path, make, message):
    path = tmp_path / "bad.fits"
    make(path)
    with pytest.raises(FitsProblem, match=message):
        read_image_fits(path.read_bytes())


def test_speclite_reads_sdss_layout(tmp_path):
    spec = read_speclite(speclite(tmp_path / "s.fits", plate=7001, fiber=33, z=2.5).read_bytes())
    assert (spec.plate, spec.mjd, spec.fiber, spec.z) == (7001, 56000, 33, pytest.approx(2.5))
    assert spec.flux.size == 3000 and np.all(spec.ivar == 4.0)
    assert spec.object_class == "QSO"


def test_speclite_flux_units_are_converted(tmp_path):
    flux = np.full(3000, 5e-17, np.float32)
    spec = read_speclite(speclite(tmp_path / "s.fits", flux=flux, flux_unit="erg / (s cm2 Angstrom)").read_bytes())
    np.testing.assert_allclose(spec.flux, 5.0, rtol=1e-5)
    np.testing.assert_allclose(spec.ivar, 4.0 / 1e34, rtol=1e-5)  # ivar scales by 1/factor^2


def test_speclite_wavelength_in_nm_is_accepted(tmp_path):
    wave_nm = np.linspace(380.0, 900.0, 3000)
    spec = read_speclite(speclite(tmp_path / "s.fits", wave_column=("wave", wave_nm, "nm")).read_bytes())
    np.testing.assert_allclose(10 ** spec.loglam[[0, -1]], [3800.0, 9000.0], rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop_hdu": "COADD"}, "missing HDU COADD"),
        ({"drop_hdu": "SPECOBJ"}, "missing HDU SPECOBJ or SPALL"),
        ({"drop_column": "flux"}, "FLUX missing"),
        ({"drop_column": "PLUG_RA"}, "PLUG_RA missing"),
        ({"ra": 400.0}, r"PLUG_RA=400.0 outside"),
        ({"dec": -91.0}, r"PLUG_DEC=-91.0 outside"),
        ({"z": float("nan")}, "Z=nan is not a finite number"),
        ({"loglam": np.linspace(3800, 9000, 3000)}, "wrong units"),
        ({"ivar": np.full(3000, -1.0, np.float32)}, "negative"),
        ({"ivar": np.zeros(3000, np.float32)}, "no usable pixels"),
        ({"flux_unit": "Jy km"}, "not a spectral flux density"),
        ({"wave_column": ("wave", np.linspace(3800, 9000, 3000), "kg")}, "unusable unit"),
    ],
)
def test_bad_speclite(tmp_path, kwargs, message):
    path = speclite(tmp_path / "bad.fits", **kwargs)
    with pytest.raises(FitsProblem, match=message):
        read_speclite(path.read_bytes())


def test_speclite_truncated(tmp_path):
    path = truncate(speclite(tmp_path / "t.fits"), 0.5)
    with pytest.raises(FitsProblem, match="truncated|unreadable|missing HDU"):
        read_speclite(path.read_bytes())


def test_spall_extension_name_is_accepted(tmp_path):
    spec = read_speclite(speclite(tmp_path / "s.fits", extname_meta="SPALL").read_bytes())
    assert spec.plate == 5000
    assert u.Unit("erg / (s cm2 Angstrom)")  # the unit string used above parses
