"""Reads of the mlworker app."""

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from mlworker.models import WorkerHeartbeat


def workers_online() -> QuerySet[WorkerHeartbeat]:
    """Workers whose heartbeat is recent enough to count them as running."""
    cutoff = timezone.now() - timedelta(seconds=settings.GALAXYLAB_WORKER_STALE_SECONDS)
    return WorkerHeartbeat.objects.filter(last_seen__gte=cutoff)
