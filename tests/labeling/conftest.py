"""Fixtures for the labeling tests: a small survey, projects on both shipped schemes, users."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog.models import Galaxy, Survey
from labeling.services import project_create


@pytest.fixture
def survey(mock_galaxies):
    call_command(
        "ingest_galaxies",
        str(mock_galaxies / "catalog.csv"),
        survey="g",
        cutouts=str(mock_galaxies / "cutouts"),
        band="F160W",
        verbosity=0,
    )
    return Survey.objects.get(name="g")


@pytest.fixture
def candels(survey):
    return project_create(slug="g-candels", name="CANDELS on g", scheme_slug="candels", survey=survey)


@pytest.fixture
def gz2(survey):
    return project_create(slug="g-gz2", name="GZ2 on g", scheme_slug="gz2", survey=survey)


@pytest.fixture
def users(db):
    User = get_user_model()
    return [User.objects.create_user(username=f"c{i}", password="pw-for-tests-1") for i in range(6)]


@pytest.fixture
def galaxies(survey):
    return list(Galaxy.objects.filter(survey=survey).order_by("pk"))


CANDELS_SPHEROID = ["main_class:spheroid", "interaction:none", "clumpiness_patchiness:c0_p0"]
CANDELS_DISK_MERGER = [
    "main_class:disk",
    "main_class:irregular",
    "interaction:merger",
    "structure:tidal_arms",
    "clumpiness_patchiness:c1_p0",
]
GZ2_SMOOTH_ROUND = ["t01:smooth", "t07:completely_round", "t06:no"]
GZ2_SPIRAL = ["t01:features", "t02:no", "t03:no_bar", "t04:spiral", "t10:medium", "t11:two", "t05:obvious", "t06:no"]
