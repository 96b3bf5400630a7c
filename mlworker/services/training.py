"""Training runs and the model registry: start, cancel, execute (on a worker), register,
promote, roll back. The admin action, the REST endpoint and ``manage.py train`` all call
``training_start``."""

import io
import logging
import time
import traceback
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from catalog.errors import ApplicationError, Conflict
from catalog.models import Band, ModelVersion
from catalog.services.files import pack_root
from mlworker.models import TrainingRun
from mlworker.registry import TASKS, task_spec

logger = logging.getLogger(__name__)
TRAIN_TASK = "mlworker.tasks.train_model"
ACTIVE = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)


def training_start(*, task: str, variant: str = "", trigger: str, user=None, config: dict | None = None) -> TrainingRun:
    """Queues a training run; refuses a second one for a (task, variant) already in training."""
    spec = task_spec(task)
    spec.config(config or {})  # unknown options are refused now, not on the worker
    variant = variant or getattr(spec, "default_variant", "")
    refusal = spec.refuse_training(variant) if hasattr(spec, "refuse_training") else None
    if refusal:
        raise ApplicationError(refusal)
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                task=task, variant=variant, trigger=trigger, requested_by=user, config=config or {}
            )
    except IntegrityError:
        active = TrainingRun.objects.filter(task=task, variant=variant, status__in=ACTIVE).first()
        who = f" by {active.requested_by}" if active and active.requested_by else ""
        raise Conflict(
            f"a training run for {task}/{variant or '-'} is already {active.status if active else 'active'}"
            f" (run #{active.pk if active else '?'}, started{who}): wait for it or cancel it"
        ) from None

    def send() -> None:
        from config.celery_app import app

        result = app.send_task(TRAIN_TASK, args=[run.pk])
        TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=result.id)

    transaction.on_commit(send)
    return run


def training_cancel(*, run: TrainingRun) -> TrainingRun:
    if run.status == TrainingRun.Status.QUEUED:
        TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.CANCELLED, finished_at=timezone.now()
        )
    elif run.status == TrainingRun.Status.RUNNING:
        TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    else:
        raise ApplicationError(f"run #{run.pk} has already {run.status}")
    run.refresh_from_db()
    return run


def _log(run_id: int, message: str) -> None:
    run = TrainingRun.objects.get(pk=run_id)
    stamp = timezone.now().strftime("%H:%M:%S")
    TrainingRun.objects.filter(pk=run_id).update(log=f"{run.log}{stamp} {message}\n", stage=message[:100])


def training_execute(*, run_id: int, worker: str = "") -> str:
    """The whole retraining, on a worker: snapshot the labels, train, evaluate on the held-out
    split, register the version, promote it if it beats the promoted one, predict."""
    claimed = TrainingRun.objects.filter(pk=run_id, status__in=ACTIVE).update(
        status=TrainingRun.Status.RUNNING, started_at=timezone.now(), worker=worker
    )
    if not claimed:
        return "not active"
    clock = time.monotonic()
    run = TrainingRun.objects.get(pk=run_id)
    spec = task_spec(run.task)
    version = None
    try:
        cfg = spec.config(run.config)
        # a family with a wall-clock limit (time_limit_s) fits its epochs to what is left of it
        limit = getattr(cfg, "time_limit_s", 0) or 0
        within = {"deadline": clock + limit} if limit > 0 else {}
        _log(run_id, "exporting the dataset")
        export, band = spec.export(run.variant, cfg)
        _log(run_id, f"dataset {export.pk}: {export.n_train} training and {export.n_test} held-out subjects")
        TrainingRun.objects.filter(pk=run_id).update(n_epochs=getattr(cfg, "epochs", 0))

        def progress(entry: dict) -> bool:
            TrainingRun.objects.filter(pk=run_id).update(
                epoch=entry["epoch"], n_epochs=entry["n_epochs"], loss=entry["loss"], eta_seconds=entry["eta_seconds"]
            )
            _log(run_id, f"epoch {entry['epoch']}/{entry['n_epochs']}: loss {entry['loss']:.4f}")
            return not TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()

        _log(run_id, "training")
        result = spec.train(cfg, pack_root() / export.path, progress, **within)
        if result.metrics.get("epochs_limited_by_time"):
            _log(
                run_id,
                f"time limit {limit:.0f} s: {result.metrics['epochs_run']} of {cfg.epochs} epochs ran "
                f"(a training step took {result.metrics.get('probe_step_seconds', 0):.3f} s on this machine)",
            )
        _log(run_id, f"held-out {spec.primary_metric}: {result.metrics[spec.primary_metric]:.4f}")
        version = model_version_register(
            task=run.task, variant=run.variant, spec=spec, result=result, export=export, band=band
        )
        TrainingRun.objects.filter(pk=run_id).update(model_version=version)
        promoted = model_version_promote_if_better(version=version)
        _log(
            run_id,
            f"registered {version}" + (", promoted" if promoted else ", not promoted (the promoted version is better)"),
        )
        from mlworker.services.predictions import prediction_runs_for_version

        runs = prediction_runs_for_version(version=version)
        _log(
            run_id, f"predicting: {sum(r.n_subjects for r in runs)} subjects in {sum(r.n_chunks for r in runs)} chunks"
        )
        TrainingRun.objects.filter(pk=run_id).update(status=TrainingRun.Status.SUCCEEDED, finished_at=timezone.now())
        return "succeeded"
    except InterruptedError:
        TrainingRun.objects.filter(pk=run_id).update(status=TrainingRun.Status.CANCELLED, finished_at=timezone.now())
        _log(run_id, "cancelled")
        return "cancelled"
    except Exception as exc:
        logger.exception("training run %s failed", run_id)
        if version is not None:
            ModelVersion.objects.filter(pk=version.pk, is_promoted=False).update(status=ModelVersion.Status.FAILED)
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingRun.Status.FAILED,
            finished_at=timezone.now(),
            error="".join(traceback.format_exception_only(exc)).strip(),
        )
        _log(run_id, f"failed: {exc}")
        raise


def model_version_register(*, task: str, variant: str, spec, result, export, band: Band | None) -> ModelVersion:
    import torch

    buffer = io.BytesIO()
    torch.save(result.checkpoint, buffer)
    with transaction.atomic():
        number = (
            ModelVersion.objects.select_for_update().filter(task=task, variant=variant).aggregate(n=Max("number"))["n"]
            or 0
        ) + 1
        name = default_storage.save(
            f"models/{task}/{variant or 'default'}/v{number}.pt", ContentFile(buffer.getvalue())
        )
        evaluation = ""
        if getattr(result, "evaluation", None):
            arrays = io.BytesIO()
            np.savez_compressed(arrays, **result.evaluation)
            evaluation = default_storage.save(
                f"models/{task}/{variant or 'default'}/v{number}.eval.npz", ContentFile(arrays.getvalue())
            )
        return ModelVersion.objects.create(
            task=task,
            variant=variant,
            number=number,
            status=ModelVersion.Status.READY,
            primary_metric=spec.primary_metric,
            primary_value=result.metrics[spec.primary_metric],
            higher_is_better=spec.higher_is_better,
            metrics=result.metrics,
            config=result.checkpoint.get("config", {}),
            dataset=export,
            band=band.name if band else "",
            pixel_scale_arcsec=band.pixel_scale_arcsec if band else None,
            psf_fwhm_arcsec=band.psf_fwhm_arcsec if band else None,
            input_ranges=result.input_ranges,
            weights=name,
            evaluation=evaluation,
            device=result.device,
        )


def _is_better(candidate: ModelVersion, incumbent: ModelVersion) -> bool:
    if incumbent.primary_value is None:
        return True
    if candidate.higher_is_better:
        return candidate.primary_value > incumbent.primary_value
    return candidate.primary_value < incumbent.primary_value


@transaction.atomic
def model_version_promote(*, version: ModelVersion) -> ModelVersion:
    """Makes ``version`` the promoted one of its (task, variant)."""
    if version.status != ModelVersion.Status.READY:
        raise ApplicationError(f"{version} is {version.status}: only a ready version can be promoted")
    ModelVersion.objects.select_for_update().filter(task=version.task, variant=version.variant).exists()
    ModelVersion.objects.filter(task=version.task, variant=version.variant, is_promoted=True).update(is_promoted=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_promoted=True)
    version.refresh_from_db()
    spec = TASKS.get(version.task)
    if hasattr(spec, "after_write"):
        spec.after_write(version)
    return version


@transaction.atomic
def model_version_promote_if_better(*, version: ModelVersion) -> bool:
    incumbent = (
        ModelVersion.objects.select_for_update()
        .filter(task=version.task, variant=version.variant, is_promoted=True)
        .first()
    )
    if incumbent is None or _is_better(version, incumbent):
        model_version_promote(version=version)
        return True
    return False


@transaction.atomic
def model_version_rollback(*, task: str, variant: str = "") -> ModelVersion:
    """Promotes the ready version before the promoted one."""
    current = ModelVersion.objects.select_for_update().filter(task=task, variant=variant, is_promoted=True).first()
    if current is None:
        raise ApplicationError(f"no promoted version of {task}/{variant or '-'} to roll back from")
    previous = (
        ModelVersion.objects.filter(
            task=task, variant=variant, status=ModelVersion.Status.READY, number__lt=current.number
        )
        .order_by("-number")
        .first()
    )
    if previous is None:
        raise ApplicationError(f"{current} is the first ready version: nothing to roll back to")
    return model_version_promote(version=previous)


def weights_path(version: ModelVersion) -> Path:
    return Path(default_storage.path(version.weights.name))
