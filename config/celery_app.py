"""The Celery application: queues, routing and worker defaults shared by every worker.

Queues: ``gpu`` carries training and inference (``train_*``/``predict_*`` tasks) and
``default`` carries light work (previews, bookkeeping). Start workers with
``celery -A config worker -Q default`` (CPU) and ``celery -A config worker -Q gpu``.
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("galaxylab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=(Queue("default"), Queue("gpu")),
    task_default_queue="default",
    task_routes=(
        [
            ("*.train_*", {"queue": "gpu"}),
            ("*.predict_*", {"queue": "gpu"}),
        ],
    ),
    # Long tasks: acknowledge after the work so a killed worker's task is redelivered,
    # and take one message at a time so a busy worker does not hoard the queue.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=6 * 3600,
    task_soft_time_limit=6 * 3600 - 60,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # The reconciler re-enqueues lost prediction chunks long before a broker would redeliver
    # them; a worker started with --beat (one per deployment) runs it.
    beat_schedule={"reconcile-predictions": {"task": "mlworker.tasks.reconcile_predictions", "schedule": 15.0}},
)
app.autodiscover_tasks()
