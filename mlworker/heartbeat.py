"""A Celery bootstep that records each worker's heartbeat in the database.

It runs in the worker's parent process, touches only the database (never CUDA), and lets
the health endpoint and the queue page see workers on any broker.
"""

import logging
import os

from celery import bootsteps
from django.db import close_old_connections
from django.utils import timezone

from config.celery_app import app

logger = logging.getLogger(__name__)
HEARTBEAT_INTERVAL_S = 5.0


class HeartbeatStep(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.started_at = timezone.now()

    def start(self, worker) -> None:
        self.beat(worker)
        self.tref = worker.timer.call_repeatedly(HEARTBEAT_INTERVAL_S, self.beat, (worker,))

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
        from mlworker.services.workers import worker_heartbeat_clear

        try:
            worker_heartbeat_clear(hostname=worker.hostname)
        except Exception:  # noqa: BLE001 - shutting down; the row simply goes stale
            logger.warning("could not clear heartbeat of %s", worker.hostname)

    def beat(self, worker) -> None:
        from mlworker.services.workers import worker_heartbeat_record

        queues = sorted(q.name for q in worker.app.amqp.queues.consume_from.values())
        try:
            close_old_connections()
            worker_heartbeat_record(
                hostname=worker.hostname,
                queues=queues,
                concurrency=worker.concurrency or 1,
                pid=os.getpid(),
                started_at=self.started_at,
            )
        except Exception:
            logger.exception("worker heartbeat failed")


app.steps["worker"].add(HeartbeatStep)
