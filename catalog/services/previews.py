"""Preview renders warmed in the background after an ingest."""

import logging

from django.db import transaction

from catalog import rendering
from catalog.models import Cutout, MockImage

logger = logging.getLogger(__name__)


def survey_previews_render(*, survey_id: int) -> int:
    params = rendering.RenderParams()
    done = 0
    for cutout in (
        Cutout.objects.filter(galaxy__survey_id=survey_id)
        .only("pk", "checksum", "shard_id", "shard_row")
        .iterator(2000)
    ):
        rendering.cutout_png(cutout, params)
        done += 1
    for image in (
        MockImage.objects.filter(snapshot__run__survey_id=survey_id)
        .only("pk", "checksum", "shard_id", "shard_row")
        .iterator(2000)
    ):
        rendering.mock_image_png(image, params)
        done += 1
    return done


def survey_previews_enqueue(*, survey_id: int) -> None:
    """Queues the preview task once the current transaction commits; a broker that is
    down costs the previews (they render on demand), never the ingest."""

    def send() -> None:
        from catalog.tasks import render_previews

        try:
            render_previews.apply_async(args=[survey_id], retry=False)
        except Exception:  # noqa: BLE001 - previews are an optimisation
            logger.warning("broker unavailable: previews of survey %s will render on demand", survey_id)

    transaction.on_commit(send)
