"""Preview renders warmed in the background after an ingest, in batches of bounded length."""

import logging

from catalog import rendering
from catalog.models import Cutout, MockImage

logger = logging.getLogger(__name__)
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
