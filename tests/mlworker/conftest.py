"""Fixtures for the ML platform tests: a voted CANDELS project on the mock galaxies."""

import pytest
from django.core.management import call_command

from catalog.models import Survey
from labeling.services import project_create

TINY = {"epochs": 2, "batch_size": 16, "channels": [4, 8], "hidden": 8}


@pytest.fixture
def voted_survey(mock_galaxies, settings):
    settings.GALAXYLAB_PREDICTION_CHUNK = 15
    call_command(
        "ingest_galaxies",
        str(mock_galaxies / "catalog.csv"),
        survey="g",
        cutouts=str(mock_galaxies / "cutouts"),
        band="F160W",
        verbosity=0,
    )
    survey = Survey.objects.get(name="g")
    project_create(slug="g-candels", name="g", scheme_slug="candels", survey=survey)
    call_command(
        "simulate_votes",
        project="g-candels",
        truth=str(mock_galaxies / "truth.csv"),
        classifiers=12,
        per_galaxy=5,
        verbosity=0,
    )
    return survey
