"""Reads of the mlworker app: workers, queues, training and prediction progress."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from catalog.models import ModelVersion
from mlworker.models import PredictionChunk, PredictionRun, TaskFailure, TrainingRun, WorkerHeartbeat

QUEUES = ("default", "gpu")


def workers_online() -> QuerySet[WorkerHeartbeat]:
    """Workers whose heartbeat is recent enough to count them as running."""
    cutoff = timezone.now() - timedelta(seconds=settings.GALAXYLAB_WORKER_STALE_SECONDS)
    return WorkerHeartbeat.objects.filter(last_seen__gte=cutoff)


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting per queue, asked of the broker (None if it does not answer)."""
    from config.celery_app import app

    lengths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            channel = connection.default_channel
            for name in QUEUES:
                try:
                    lengths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except Exception:  # noqa: BLE001 - a queue nobody declared yet is empty
                    lengths[name] = 0
    except Exception:  # noqa: BLE001 - the broker is down: say so on the page
        lengths = dict.fromkeys(QUEUES)
    return lengths


def prediction_progress(*, version: ModelVersion) -> dict:
    runs = PredictionRun.objects.filter(model_version=version)
    chunks = PredictionChunk.objects.filter(run__in=runs).aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status=PredictionChunk.Status.DONE)),
        running=Count("id", filter=Q(status=PredictionChunk.Status.RUNNING)),
        failed=Count("id", filter=Q(status=PredictionChunk.Status.FAILED)),
    )
    return {
        "runs": runs.count(),
        "subjects": sum(r.n_subjects for r in runs),
        "chunks": chunks["total"],
        "chunks_done": chunks["done"],
        "chunks_running": chunks["running"],
        "chunks_failed": chunks["failed"],
        "complete": version.predictions_complete,
        "predictions": version.predictions.count(),
    }


def training_run_progress(*, run: TrainingRun) -> dict:
    version = run.model_version
    return {
        "id": run.pk,
        "task": run.task,
        "variant": run.variant,
        "status": run.status,
        "stage": run.stage,
        "epoch": run.epoch,
        "n_epochs": run.n_epochs,
        "loss": run.loss,
        "eta_seconds": run.eta_seconds,
        "log": run.log[-8000:],
        "error": run.error,
        "worker": run.worker,
        "cancel_requested": run.cancel_requested,
        "model_version": (
            {
                "id": version.pk,
                "name": str(version),
                "number": version.number,
                "is_promoted": version.is_promoted,
                "primary_metric": version.primary_metric,
                "primary_value": version.primary_value,
                "predictions": prediction_progress(version=version),
            }
            if version
            else None
        ),
    }


def queue_overview() -> dict:
    return {
        "workers": list(workers_online()),
        "queues": queue_lengths(),
        "training": TrainingRun.objects.filter(status__in=["queued", "running"]).order_by("created_at"),
        "chunks_running": PredictionChunk.objects.filter(status=PredictionChunk.Status.RUNNING).select_related(
            "run__model_version"
        )[:50],
        "chunks_pending": PredictionChunk.objects.filter(status=PredictionChunk.Status.PENDING).count(),
        "failures": TaskFailure.objects.all()[:20],
        "failed_runs": TrainingRun.objects.filter(status="failed")[:10],
        "failed_chunks": PredictionChunk.objects.filter(status=PredictionChunk.Status.FAILED)
        .select_related("run__model_version")
        .order_by("-updated_at")[:10],
    }
