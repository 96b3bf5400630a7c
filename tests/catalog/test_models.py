"""Constraints live in the database: direct writes that bypass validation are refused."""

import pytest
from django.db import IntegrityError, transaction

from catalog.models import Band, Galaxy, MergerEvent, QuasarSpectrum, SimulationRun, Snapshot, SpectrumShard, Survey

pytestmark = pytest.mark.django_db


@pytest.fixture
def survey():
    return Survey.objects.create(name="s", kind=Survey.Kind.IMAGING)


def galaxy(survey, **kw):
    values = {"survey": survey, "source_id": "a", "ra": 10.0, "dec": 0.0, "healpix": 1, "cx": 1.0, "cy": 0.0, "cz": 0.0}
    values.update(kw)
    return Galaxy(**values)


def refused(obj):
    with pytest.raises(IntegrityError), transaction.atomic():
        obj.save()


@pytest.mark.parametrize(
    "bad",
    [
        {"ra": 360.0},
        {"ra": -0.1},
        {"dec": 90.5},
        {"mag": 45.0},
        {"mag_err": -1.0},
        {"z_phot": -0.2},
        {"z_spec": 16.0},
        {"log_stellar_mass": 15.0},
        {"z_phot_err": -0.01},
    ],
)
def test_galaxy_range_checks(survey, bad):
    refused(galaxy(survey, **bad))


def test_galaxy_source_id_unique_per_survey(survey):
    galaxy(survey).save()
    refused(galaxy(survey))
    other = Survey.objects.create(name="t", kind=Survey.Kind.IMAGING)
    galaxy(other).save()  # same id in another survey is fine


def test_choices_and_band_checks(survey):
    refused(Survey(name="x", kind="radio"))
    refused(Band(survey=survey, name="H", pixel_scale_arcsec=0.0, psf_fwhm_arcsec=0.1))
    Band.objects.create(survey=survey, name="H", pixel_scale_arcsec=0.06, psf_fwhm_arcsec=0.18)
    refused(Band(survey=survey, name="H", pixel_scale_arcsec=0.06, psf_fwhm_arcsec=0.18))


def test_spectrum_and_simulation_checks(survey):
    shard = SpectrumShard.objects.create(survey=survey, path="p", n_spectra=1, n_pixels=10)
    values = {
        "survey": survey,
        "plate": 1,
        "mjd": 2,
        "fiber": 3,
        "ra": 1.0,
        "dec": 1.0,
        "healpix": 1,
        "cx": 1.0,
        "cy": 0.0,
        "cz": 0.0,
        "z_qso": 2.5,
        "snr": 5.0,
        "loglam_start_index": 35800,
        "n_pixels": 10,
        "shard": shard,
        "shard_offset": 0,
    }
    QuasarSpectrum.objects.create(**values)
    refused(QuasarSpectrum(**values))  # plate-mjd-fiber unique
    refused(QuasarSpectrum(**{**values, "fiber": 4, "z_qso": -1.0}))
    refused(QuasarSpectrum(**{**values, "fiber": 0}))
    run = SimulationRun.objects.create(survey=survey, name="V")
    snap = {
        "run": run,
        "scale_factor": 0.3,
        "redshift": 2.33,
        "stellar_mass_msun": 1e10,
        "gas_mass_msun": 1e9,
        "sfr_msun_per_yr": 3,
        "gas_inflow_rate_msun_per_yr": 1,
        "gas_outflow_rate_msun_per_yr": 1,
        "compaction_phase": "pre",
    }
    Snapshot.objects.create(**snap)
    refused(Snapshot(**snap))
    refused(Snapshot(**{**snap, "scale_factor": 0.4, "compaction_phase": "later"}))
    refused(Snapshot(**{**snap, "scale_factor": 1.5}))
    refused(Snapshot(**{**snap, "scale_factor": 0.5, "sfr_msun_per_yr": -1}))
    refused(MergerEvent(run=run, scale_factor=0.3, mass_ratio=1.5, kind="major"))
    refused(MergerEvent(run=run, scale_factor=0.3, mass_ratio=0.5, kind="huge"))
