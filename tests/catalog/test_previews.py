"""Preview batches cover a whole survey and chain until done."""

import pytest
from django.core.management import call_command

from catalog.models import Survey
from catalog.services import previews

pytestmark = pytest.mark.django_db


def test_preview_batches_chain_over_the_survey(mock_galaxies, isolated_files, monkeypatch):
    call_command(
        "ingest_galaxies",
        str(mock_galaxies / "catalog.csv"),
        survey="g",
        cutouts=str(mock_galaxies / "cutouts"),
        band="F160W",
        verbosity=0,
    )
    monkeypatch.setattr(previews, "BATCH", 15)
    survey = Survey.objects.get(name="g")
    after, batches = 0, []
    while after is not None:
        done, after = previews.survey_previews_render(survey_id=survey.pk, kind="cutout", after_pk=after or 0)
        batches.append(done)
    assert batches == [15, 15, 10]
    assert len(list((isolated_files / "renders" / "cutouts").rglob("*.png"))) == 40


def test_the_task_enqueued_by_name_exists():
    from catalog.services.notify import PREDICT_TASK, RENDER_TASK
    from catalog.tasks import render_previews
    from mlworker.tasks import schedule_predictions_for_survey

    assert render_previews.name == RENDER_TASK and schedule_predictions_for_survey.name == PREDICT_TASK
