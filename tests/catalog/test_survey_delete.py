"""A survey ingested by mistake goes with everything hanging off it, files included."""

import pytest
from django.core.management import call_command

from catalog.models import Band, Cutout, Galaxy, ImageShard, MockImage, QuasarSpectrum, SimulationRun, Snapshot, Survey
from catalog.services.surveys import survey_delete
from tests.conftest import files_under

pytestmark = pytest.mark.django_db


def test_delete_removes_rows_files_and_shards(ingested, isolated_files, django_capture_on_commit_callbacks):
    kept_before = Galaxy.objects.count(), QuasarSpectrum.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        report = survey_delete(survey=Survey.objects.get(name="v"))
    assert report.rows["catalog.MockImage"] == 93 and report.rows["catalog.Snapshot"] == 31
    assert not SimulationRun.objects.exists() and not MockImage.objects.exists() and not Snapshot.objects.exists()
    assert files_under(isolated_files / "media" / "mock_images") == []
    assert files_under(isolated_files / "packs" / "mock_images") == []
    assert (Galaxy.objects.count(), QuasarSpectrum.objects.count()) == kept_before
    with django_capture_on_commit_callbacks(execute=True):
        survey_delete(survey=Survey.objects.get(name="g"))
    assert (
        not Galaxy.objects.exists()
        and not Cutout.objects.exists()
        and not Band.objects.filter(survey__name="g").exists()
    )
    assert not ImageShard.objects.exists()
    assert (
        files_under(isolated_files / "media" / "cutouts") == []
        and files_under(isolated_files / "packs" / "cutouts") == []
    )
    assert QuasarSpectrum.objects.count() == 24


def test_delete_survey_command(mock_spectra, isolated_files, django_capture_on_commit_callbacks):
    call_command("ingest_spectra", str(mock_spectra / "spectra"), survey="q", verbosity=0)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("delete_survey", "q", yes=True, verbosity=0)
    assert not Survey.objects.exists() and files_under(isolated_files / "packs") == []
