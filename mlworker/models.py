"""Operational state of the Celery workers."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """Last sign of life of one Celery worker; written by the worker every few seconds.

    Works on every broker (the embedded filesystem broker has no broadcast, so
    ``control.ping`` cannot be used to find workers there).
    """

    hostname = models.CharField(max_length=255, unique=True, help_text="Celery node name.")
    queues = models.CharField(max_length=255, help_text="Comma-separated queues it consumes.")
    concurrency = models.PositiveIntegerField(default=1)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname
