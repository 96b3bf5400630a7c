"""ingest_spectra: spec-lite files, the SDSS grid, bad files, duplicates and re-runs."""

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from django.core.management import CommandError, call_command

from catalog.models import QuasarSpectrum, SpectrumShard, Survey
from catalog.selectors import spectra_arrays
from catalog.spectral_grid import grid_loglam
from tests.catalog.factories import speclite, truncate
from tests.conftest import files_under

pytestmark = pytest.mark.django_db


def ingest(*paths, **kwargs):
    call_command("ingest_spectra", *map(str, paths), verbosity=0, **kwargs)


def test_mock_sightlines_round_trip(mock_spectra, isolated_files):
    ingest(mock_spectra / "spectra", survey="mock-sdss", workers=2)
    truth = Table.read(mock_spectra / "sightlines_truth.csv")
    assert QuasarSpectrum.objects.count() == len(truth) == 24
    assert Survey.objects.get(name="mock-sdss").kind == Survey.Kind.SPECTROSCOPIC
    for row in truth[:6]:
        spectrum = QuasarSpectrum.objects.get(plate=row["plate"], mjd=row["mjd"], fiber=row["fiber"])
        assert spectrum.z_qso == pytest.approx(row["z_qso"], abs=1e-5)
        assert spectrum.thing_id == row["thing_id"] and not spectrum.resampled
        # The S/N the ingest measures is the S/N the mock was made with.
        assert spectrum.snr == pytest.approx(row["snr"], rel=0.15)
        start, flux, ivar = spectra_arrays(spectrum_ids=[spectrum.pk])[0]
        with fits.open(
            mock_spectra / "spectra" / f"spec-{row['plate']:04d}-{row['mjd']:05d}-{row['fiber']:04d}.fits"
        ) as hdul:
            coadd = hdul["COADD"].data
            np.testing.assert_array_equal(flux, coadd["flux"])
            np.testing.assert_allclose(grid_loglam(start, flux.size), coadd["loglam"], atol=1e-6)
            assert np.all(ivar[coadd["and_mask"] & (1 << 18) != 0] == 0)  # FULLREJECT pixels masked
    files = files_under(isolated_files)
    ingest(mock_spectra / "spectra", survey="mock-sdss")
    assert files_under(isolated_files) == files and SpectrumShard.objects.count() == 1


def test_other_grids_are_resampled(tmp_path):
    wave = np.linspace(3700.0, 9000.0, 6000)
    ingest(
        speclite(
            tmp_path / "lin.fits",
            wave_column=("wave", wave, "Angstrom"),
            flux=np.full(6000, 3.0, np.float32),
            ivar=np.ones(6000, np.float32),
        )
    )
    spectrum = QuasarSpectrum.objects.get()
    assert spectrum.resampled
    start, flux, ivar = spectra_arrays(spectrum_ids=[spectrum.pk])[0]
    assert 10 ** (start * 1e-4) == pytest.approx(3700.0, abs=1.0)
    np.testing.assert_allclose(flux[ivar > 0], 3.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop_hdu": "COADD"}, "missing HDU COADD"),
        ({"drop_column": "PLUG_DEC"}, "column PLUG_DEC missing"),
        ({"dec": 99.0}, "PLUG_DEC=99.0 outside"),
        ({"loglam": np.linspace(3800.0, 9000.0, 3000)}, "loglam outside .*wrong units"),
    ],
)
def test_one_bad_file_writes_nothing(tmp_path, isolated_files, kwargs, message):
    speclite(tmp_path / "in" / "good.fits", fiber=1)
    speclite(tmp_path / "in" / "bad.fits", fiber=2, **kwargs)
    with pytest.raises(CommandError, match=rf"bad.fits: {message}"):
        ingest(tmp_path / "in")
    assert not QuasarSpectrum.objects.exists() and not Survey.objects.exists()
    assert files_under(isolated_files / "media") == [] and files_under(isolated_files / "packs") == []


def test_truncated_and_non_fits_files(tmp_path):
    truncate(speclite(tmp_path / "in" / "t.fits"))
    (tmp_path / "in" / "x.fits").write_text("not fits at all " * 400)
    with pytest.raises(CommandError) as info:
        ingest(tmp_path / "in")
    assert "t.fits: truncated" in str(info.value) and "x.fits: not a FITS file" in str(info.value)
    with pytest.raises(CommandError, match="no such file or directory"):
        ingest(tmp_path / "missing")


def test_duplicates_and_other_survey(tmp_path):
    speclite(tmp_path / "a" / "one.fits", plate=10, fiber=5)
    speclite(tmp_path / "a" / "two.fits", plate=10, fiber=5, z=2.9)
    with pytest.raises(CommandError, match="plate-mjd-fiber 10-56000-5 also in"):
        ingest(tmp_path / "a")
    (tmp_path / "a" / "two.fits").unlink()
    ingest(tmp_path / "a", survey="first")
    with pytest.raises(CommandError, match="10-56000-5 is already in survey first"):
        ingest(tmp_path / "a", survey="second")


def test_changed_file_updates_the_spectrum(tmp_path, isolated_files, django_capture_on_commit_callbacks):
    path = speclite(tmp_path / "s.fits", z=3.0)
    ingest(path)
    pk = QuasarSpectrum.objects.get().pk
    old_file = QuasarSpectrum.objects.get().fits_file.name
    shutil.copy(speclite(tmp_path / "new" / "s.fits", z=3.1, flux=np.full(3000, 7.0, np.float32)), path)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(path)
    spectrum = QuasarSpectrum.objects.get()
    assert spectrum.pk == pk and spectrum.z_qso == pytest.approx(3.1)
    np.testing.assert_allclose(spectra_arrays(spectrum_ids=[pk])[0][1], 7.0)
    assert spectrum.fits_file.name != old_file
    assert not (isolated_files / "media" / old_file).exists(), "the replaced file is removed after commit"
    assert (isolated_files / "media" / spectrum.fits_file.name).exists()
