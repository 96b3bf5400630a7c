"""Work queued on the workers once an ingest has committed: preview renders, and predictions
of the promoted models for the new subjects. Tasks are sent by name: the catalog does not
import the apps that consume its data. A broker that is down costs the previews (they render
on demand) and the automatic predictions (``manage.py predict`` catches up), never the ingest.
"""

import logging

from django.db import transaction

from config.celery_app import app as celery_app

logger = logging.getLogger(__name__)
RENDER_TASK = "catalog.tasks.render_previews"
PREDICT_TASK = "mlworker.tasks.schedule_predictions_for_survey"


def _send(name: str, args: list) -> None:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)  # fail fast
            celery_app.send_task(name, args=args, retry=False, connection=connection)
    except Exception:  # noqa: BLE001 - see the module docstring
        logger.warning("broker unavailable: %s%s not queued", name, tuple(args))


def survey_previews_enqueue(*, survey_id: int, kind: str, after_pk: int = 0, on_commit: bool = True) -> None:
    """Queues a preview batch (after the current transaction commits)."""
    if on_commit:
        transaction.on_commit(lambda: _send(RENDER_TASK, [survey_id, kind, after_pk]))
    else:
        _send(RENDER_TASK, [survey_id, kind, after_pk])


def survey_ingested(*, survey_id: int, images: str) -> None:
    """After an ingest that added or changed images: previews, then predictions."""
    survey_previews_enqueue(survey_id=survey_id, kind=images)
    transaction.on_commit(lambda: _send(PREDICT_TASK, [survey_id]))
