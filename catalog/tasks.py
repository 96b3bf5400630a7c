"""Celery tasks of the catalog (light work, queue ``default``): thin wrappers over services."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, time_limit=3600, soft_time_limit=3500, ignore_result=True)
def render_previews(self, survey_id: int) -> int:
    """Renders the default PNG of every cutout and mock image of a survey into the cache,
    so that the catalog and voting pages show them at once."""
    from catalog.services.previews import survey_previews_render

    done = survey_previews_render(survey_id=survey_id)
    logger.info("rendered %d previews for survey %d", done, survey_id)
    return done
