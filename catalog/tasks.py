"""Celery tasks of the catalog (light work, queue ``default``): thin wrappers over services."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=900, soft_time_limit=840, ignore_result=True)
def render_previews(survey_id: int, kind: str = "cutout", after_pk: int = 0) -> int:
    """Renders one batch of a survey's default previews into the cache, then queues the next,
    so that the catalog and voting pages show images at once however large the survey."""
    from catalog.services.notify import survey_previews_enqueue
    from catalog.services.previews import survey_previews_render

    done, last = survey_previews_render(survey_id=survey_id, kind=kind, after_pk=after_pk)
    logger.info("rendered %d %s previews for survey %d", done, kind, survey_id)
    if last is not None:
        survey_previews_enqueue(survey_id=survey_id, kind=kind, after_pk=last, on_commit=False)
    return done
