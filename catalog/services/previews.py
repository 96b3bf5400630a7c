"""Preview renders warmed in the background after an ingest, in batches of bounded length."""

import logging

from django.db import transaction

from catalog import rendering
from catalog.models import Cutout, MockImage
from config.celery_app import app as celery_app

logger = logging.getLogger(__name__)
RENDER_TASK = "catalog.tasks.render_previews"
BATCH = 2000  # renders per task: ~10 s, far inside the task time limit, for any survey size


def survey_previews_render(*, survey_id: int, kind: str, after_pk: int = 0) -> tuple[int, int | None]:
    """Renders the default PNG of up to BATCH images of a survey with pk > ``after_pk``.

    Returns (rendered, last pk) — last pk None when the survey is done.
    """
    params = rendering.RenderParams()
    if kind == "cutout":
        queryset = Cutout.objects.filter(galaxy__survey_id=survey_id)
        render = rendering.cutout_png
    else:
        queryset = MockImage.objects.filter(snapshot__run__survey_id=survey_id)
        render = rendering.mock_image_png
    images = list(
        queryset.filter(pk__gt=after_pk).order_by("pk").only("pk", "checksum", "shard_id", "shard_row")[:BATCH]
    )
    for image in images:
        render(image, params)
    last = images[-1].pk if len(images) == BATCH else None
    return len(images), last


def survey_previews_enqueue(*, survey_id: int, kind: str, after_pk: int = 0, on_commit: bool = True) -> None:
    """Queues a preview batch (after the current transaction commits); a broker that is down
    costs the previews (they render on demand), never the ingest."""

    def send() -> None:
        try:
            with celery_app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)  # fail fast
                # By name: services do not import the task modules that call them.
                celery_app.send_task(RENDER_TASK, args=[survey_id, kind, after_pk], retry=False, connection=connection)
        except Exception:  # noqa: BLE001 - previews are an optimisation
            logger.warning("broker unavailable: previews of survey %s will render on demand", survey_id)

    if on_commit:
        transaction.on_commit(send)
    else:
        send()
