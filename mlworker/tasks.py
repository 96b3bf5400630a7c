"""Celery tasks of the ML platform: thin wrappers that take ids and call services.

``train_*`` and ``predict_*`` go to the ``gpu`` queue, the rest to ``default`` (config/celery_app).
Long tasks acknowledge late, so a killed worker's message is delivered again; the
prediction reconciler does not wait for that (see mlworker/services/predictions.py).
"""

from celery import shared_task
from django.db import OperationalError

TRAINING_LIMIT_S = 6 * 3600


@shared_task(
    bind=True, acks_late=True, time_limit=TRAINING_LIMIT_S, soft_time_limit=TRAINING_LIMIT_S - 60, ignore_result=True
)
def train_model(self, run_id: int) -> str:
    from mlworker.services.training import training_execute

    return training_execute(run_id=run_id, worker=self.request.hostname or "")


@shared_task(
    bind=True,
    acks_late=True,
    time_limit=3600,
    soft_time_limit=3500,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def predict_chunk(self, chunk_id: int) -> str:
    from mlworker.services.predictions import prediction_chunk_execute

    return prediction_chunk_execute(chunk_id=chunk_id, worker=self.request.hostname or "")


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280, ignore_result=True)
def reconcile_predictions() -> int:
    from mlworker.services.predictions import predictions_reconcile

    return predictions_reconcile()


@shared_task(acks_late=True, time_limit=600, soft_time_limit=580, ignore_result=True)
def schedule_predictions_for_survey(survey_id: int) -> int:
    """After an ingest: the promoted versions predict for the survey's new subjects."""
    from catalog.models import Survey
    from mlworker.services.predictions import new_subjects_predict

    survey = Survey.objects.filter(pk=survey_id).first()
    return len(new_subjects_predict(survey=survey)) if survey else 0
