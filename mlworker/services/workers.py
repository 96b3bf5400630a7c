"""Writes of the mlworker app."""

from datetime import datetime

from django.utils import timezone

from mlworker.models import WorkerHeartbeat


def worker_heartbeat_record(
    *, hostname: str, queues: list[str], concurrency: int, pid: int, started_at: datetime
) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": ",".join(queues),
            "concurrency": concurrency,
            "pid": pid,
            "started_at": started_at,
            "last_seen": timezone.now(),
        },
    )


def worker_heartbeat_clear(*, hostname: str) -> None:
    WorkerHeartbeat.objects.filter(hostname=hostname).delete()
