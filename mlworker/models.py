"""Operational state of the Celery workers."""

from django.conf import settings
from django.db import models
from django.db.models import Q


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


class TrainingRun(models.Model):
    """One retraining of a (task, variant): its progress, its log, the version it produced."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    class Trigger(models.TextChoices):
        ADMIN = "admin", "Django admin"
        API = "api", "REST API"
        CLI = "cli", "manage.py train"

    task = models.CharField(max_length=16)
    variant = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    config = models.JSONField(default=dict, blank=True, help_text="Overrides of the task's default training config.")
    stage = models.CharField(max_length=100, blank=True, help_text="What the run is doing now.")
    epoch = models.PositiveIntegerField(default=0)
    n_epochs = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    log = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    model_version = models.ForeignKey(
        "catalog.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    celery_task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A second trigger for a (task, variant) already queued or running is refused here.
            models.UniqueConstraint(
                fields=["task", "variant"], condition=Q(status__in=["queued", "running"]), name="trainingrun_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"training {self.task}/{self.variant or '-'} #{self.pk} ({self.status})"


class PredictionRun(models.Model):
    """A model version applied to a set of subjects, in chunks spread over the workers."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        COMPLETE = "complete", "complete"
        FAILED = "failed", "failed"

    model_version = models.ForeignKey("catalog.ModelVersion", on_delete=models.CASCADE, related_name="prediction_runs")
    survey = models.ForeignKey("catalog.Survey", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    n_subjects = models.PositiveIntegerField(default=0)
    n_chunks = models.PositiveIntegerField(default=0)
    forced = models.BooleanField(default=False, help_text="Applied despite different survey facts.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"prediction run {self.pk} of {self.model_version_id} ({self.status})"


class PredictionChunk(models.Model):
    """A slice of a prediction run's subjects; done exactly when its rows are written."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    run = models.ForeignKey(PredictionRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    subject_ids = models.JSONField(help_text="Subject primary keys of this chunk.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True, help_text="A running chunk renews this while alive.")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="predictionchunk_unique_index")]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="chunk_status_lease")]

    def __str__(self) -> str:
        return f"chunk {self.index} of run {self.run_id} ({self.status})"


class TaskFailure(models.Model):
    """A Celery task that ended in an error, for the queue page."""

    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64)
    worker = models.CharField(max_length=255, blank=True)
    error = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.task_name} failed at {self.created_at:%Y-%m-%d %H:%M}"
