"""Prediction runs: a model version applied to a survey's subjects in chunks on the workers.

A chunk is claimed with a lease that the worker renews while it works, and its rows are
written in bulk in the same transaction that marks it done, so a killed worker leaves no
half set of predictions. The reconciler re-enqueues chunks whose message was lost (pending
too long) or whose worker died (lease expired), well before the broker's visibility
timeout; writes are idempotent per (subject, model version), so a chunk done twice is
harmless. A version's predictions are complete only when every chunk of its run is done.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog.bulk import bulk_upsert
from catalog.errors import ApplicationError
from catalog.models import ModelVersion, Prediction, Survey
from mlworker.models import PredictionChunk, PredictionRun
from mlworker.registry import task_spec

logger = logging.getLogger(__name__)
CHUNK_TASK = "mlworker.tasks.predict_chunk"


def _settings(name: str, default):
    return getattr(settings, name, default)


def _send_chunks(chunk_ids: list[int]) -> None:
    from config.celery_app import app

    PredictionChunk.objects.filter(pk__in=chunk_ids).update(enqueued_at=timezone.now())
    for chunk_id in chunk_ids:
        app.send_task(CHUNK_TASK, args=[chunk_id])


def check_survey_facts(*, version: ModelVersion, survey: Survey) -> list[str]:
    """How the survey differs from what the model was trained for (empty: it matches)."""
    return task_spec(version.task).survey_problems(version, survey)


def prediction_run_start(
    *, version: ModelVersion, survey: Survey, force: bool = False, only_missing: bool = False
) -> PredictionRun | None:
    """Fans a version out over a survey's subjects in chunks (enqueued once this commits).

    With ``only_missing``, just the subjects with no prediction of the version that no
    unfinished run is about to predict either; None when there are none."""
    if version.status != ModelVersion.Status.READY:
        raise ApplicationError(f"{version} is {version.status}: only a ready version can predict")
    problems = check_survey_facts(version=version, survey=survey)
    spec = task_spec(version.task)
    if problems and not (force and spec.can_force(version, survey)):
        hint = (
            " Apply it anyway with --force (predictions may be unreliable)" if spec.can_force(version, survey) else ""
        )
        raise ApplicationError(f"{spec.trained_for(version)}; survey {survey.name}: {'; '.join(problems)}.{hint}")
    if problems:
        logger.warning("applying %s to %s despite: %s", version, survey.name, "; ".join(problems))
    ids = spec.subject_ids(version, survey, only_missing)
    if only_missing:
        ids = sorted(set(ids) - _ids_in_flight(version, survey))
        if not ids:
            return None
    size = _settings("GALAXYLAB_PREDICTION_CHUNK", 1000)
    with transaction.atomic():
        run = PredictionRun.objects.create(
            model_version=version, survey=survey, n_subjects=len(ids), forced=bool(problems)
        )
        chunks = PredictionChunk.objects.bulk_create(
            [
                PredictionChunk(run=run, index=i, subject_ids=ids[start : start + size])
                for i, start in enumerate(range(0, len(ids), size))
            ]
        )
        run.n_chunks = len(chunks)
        if not chunks:
            run.status, run.finished_at = PredictionRun.Status.COMPLETE, timezone.now()
        run.save(update_fields=["n_chunks", "status", "finished_at"])
        ModelVersion.objects.filter(pk=version.pk).update(
            predictions_complete=not chunks and _all_runs_complete(version)
        )
        chunk_ids = [c.pk for c in chunks]
        transaction.on_commit(lambda: _send_chunks(chunk_ids))
    return run


def _ids_in_flight(version: ModelVersion, survey: Survey) -> set[int]:
    chunks = PredictionChunk.objects.filter(
        run__model_version=version,
        run__survey=survey,
        status__in=[PredictionChunk.Status.PENDING, PredictionChunk.Status.RUNNING],
    )
    return {i for subject_ids in chunks.values_list("subject_ids", flat=True) for i in subject_ids}


def prediction_runs_for_version(*, version: ModelVersion, only_missing: bool = False) -> list[PredictionRun]:
    """A new version predicts over every survey it suits (morphology: the band it was trained for)."""
    runs = [
        prediction_run_start(version=version, survey=s, only_missing=only_missing)
        for s in task_spec(version.task).surveys(version)
    ]
    return [r for r in runs if r is not None]


def _all_runs_complete(version: ModelVersion) -> bool:
    """No run of the version is still running, and every subject of a chunk that failed for
    good has since been predicted by a later run."""
    if PredictionRun.objects.filter(model_version=version, status=PredictionRun.Status.RUNNING).exists():
        return False
    failed = PredictionChunk.objects.filter(run__model_version=version, status=PredictionChunk.Status.FAILED)
    ids = {i for subject_ids in failed.values_list("subject_ids", flat=True) for i in subject_ids}
    if not ids:
        return True
    spec = task_spec(version.task)
    done = 0
    for survey in Survey.objects.filter(pk__in=failed.values("run__survey_id")):
        field = _subject_field(spec, survey)
        in_survey = [i for c in failed.filter(run__survey=survey) for i in c.subject_ids]
        done += version.predictions.filter(**{f"{field}_id__in": in_survey}).count()
    return done == len(ids)


def _subject_field(spec, survey: Survey) -> str:
    """The prediction's subject column for a survey's subjects (galaxy, spectrum or mock image)."""
    return spec.subject_field_for(survey) if hasattr(spec, "subject_field_for") else spec.subject_field


def _claim(chunk_id: int, worker: str) -> PredictionChunk | None:
    now = timezone.now()
    lease = now + timedelta(seconds=_settings("GALAXYLAB_PREDICTION_LEASE_SECONDS", 60))
    claimed = (
        PredictionChunk.objects.filter(pk=chunk_id)
        .filter(
            Q(status=PredictionChunk.Status.PENDING)
            | Q(status=PredictionChunk.Status.RUNNING, lease_expires_at__lt=now)
        )
        .update(
            status=PredictionChunk.Status.RUNNING, lease_expires_at=lease, worker=worker, attempts=F("attempts") + 1
        )
    )
    return (
        PredictionChunk.objects.select_related("run__model_version", "run__survey").get(pk=chunk_id)
        if claimed
        else None
    )


def renew_lease(chunk_id: int) -> None:
    lease = timezone.now() + timedelta(seconds=_settings("GALAXYLAB_PREDICTION_LEASE_SECONDS", 60))
    PredictionChunk.objects.filter(pk=chunk_id, status=PredictionChunk.Status.RUNNING).update(lease_expires_at=lease)


_LOADED: dict[tuple, object] = {}


def _loaded_model(version: ModelVersion, spec, device):
    """Each worker process loads a version once (the two most recent are kept). Keyed by the
    weights file and creation time too: a database may give a deleted version's id to a new one."""
    key = (version.pk, version.weights.name, version.created_at)
    if key not in _LOADED:
        while len(_LOADED) >= 2:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = spec.load(version, device)
    return _LOADED[key]


def prediction_chunk_execute(*, chunk_id: int, worker: str = "") -> str:
    """Predicts one chunk and writes all its rows, with the chunk's done flag, atomically."""
    from mlworker.ml.device import pick_device

    chunk = _claim(chunk_id, worker)
    if chunk is None:
        return "skipped: done or held by a live worker"
    version = chunk.run.model_version
    survey = chunk.run.survey
    spec = task_spec(version.task)
    device = pick_device()
    try:
        loaded = _loaded_model(version, spec, device)
    except Exception as exc:
        _chunk_failed(chunk, f"loading {version}: {type(exc).__name__}: {exc}")
        raise
    rows = []
    try:
        if hasattr(spec, "prepare"):  # survey-wide work (neighbours), done once per worker process
            spec.prepare(version, loaded, survey, device, renew=lambda: renew_lease(chunk_id))
    except Exception as exc:
        _chunk_failed(chunk, f"preparing: {type(exc).__name__}: {exc}")
        raise
    batch = _settings("GALAXYLAB_PREDICTION_BATCH", 256)
    if hasattr(spec, "prediction_batch"):  # slow methods renew their lease more often
        batch = min(batch, spec.prediction_batch(version))
    try:
        for start in range(0, len(chunk.subject_ids), batch):
            rows += spec.predict(version, loaded, chunk.subject_ids[start : start + batch], device, survey=survey)
            renew_lease(chunk_id)
    except Exception as exc:
        _chunk_failed(chunk, f"{type(exc).__name__}: {exc}")
        raise
    with transaction.atomic():
        prediction_rows_write(
            version=version, subject_field=_subject_field(spec, survey), rows=rows, subject_ids=chunk.subject_ids
        )
        PredictionChunk.objects.filter(pk=chunk_id).update(
            status=PredictionChunk.Status.DONE, lease_expires_at=None, error=""
        )
        if hasattr(spec, "after_write"):
            spec.after_write(version, chunk.subject_ids)
        _complete_if_done(chunk.run_id)
    return f"{len(rows)} predictions"


def prediction_rows_write(*, version: ModelVersion, subject_field: str, rows, subject_ids: list[int]) -> None:
    """Bulk upsert of prediction rows (COPY on PostgreSQL), idempotent per (subject, version)."""
    bulk_upsert(
        model=Prediction,
        fields=[subject_field, "values", "uncertainty", "out_of_distribution"],
        rows=((r.subject_id, r.values, r.uncertainty, r.out_of_distribution) for r in rows),
        conflict_fields=["model_version", subject_field],
        constants={"model_version_id": version.pk},
        key_filter={f"{subject_field}__in": subject_ids},
    )


def _chunk_failed(chunk: PredictionChunk, error: str) -> None:
    """A chunk that raised goes back to pending (the reconciler resends it after a while)
    until it has failed GALAXYLAB_PREDICTION_MAX_ATTEMPTS times; then it is failed for good."""
    give_up = chunk.attempts >= _settings("GALAXYLAB_PREDICTION_MAX_ATTEMPTS", 3)
    with transaction.atomic():
        PredictionChunk.objects.filter(pk=chunk.pk, status=PredictionChunk.Status.RUNNING).update(
            status=PredictionChunk.Status.FAILED if give_up else PredictionChunk.Status.PENDING,
            lease_expires_at=None,
            enqueued_at=timezone.now(),
            error=f"attempt {chunk.attempts}: {error}"[:4000],
        )
        if give_up:
            logger.error("prediction chunk %s failed %d times, giving up: %s", chunk.pk, chunk.attempts, error)
            _complete_if_done(chunk.run_id)


def _complete_if_done(run_id: int) -> None:
    """Once no chunk of the run is pending or running, the run is complete (every chunk done)
    or failed (some chunk failed for good)."""
    run = PredictionRun.objects.select_for_update().get(pk=run_id)
    if run.status != PredictionRun.Status.RUNNING:
        return
    chunks = PredictionChunk.objects.filter(run_id=run_id)
    if chunks.filter(status__in=[PredictionChunk.Status.PENDING, PredictionChunk.Status.RUNNING]).exists():
        return
    failed = chunks.filter(status=PredictionChunk.Status.FAILED).exists()
    run.status = PredictionRun.Status.FAILED if failed else PredictionRun.Status.COMPLETE
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    version = run.model_version
    ModelVersion.objects.filter(pk=version.pk).update(predictions_complete=_all_runs_complete(version))


def predictions_reconcile() -> int:
    """Re-enqueues chunks whose message was lost or whose worker died; returns how many."""
    now = timezone.now()
    lost_after = timedelta(seconds=_settings("GALAXYLAB_PREDICTION_LOST_SECONDS", 60))
    # A chunk whose worker died on every try (out of memory, say) is failed for good.
    max_attempts = _settings("GALAXYLAB_PREDICTION_MAX_ATTEMPTS", 3)
    for chunk in PredictionChunk.objects.filter(
        status=PredictionChunk.Status.RUNNING, lease_expires_at__lt=now, attempts__gte=max_attempts
    ):
        _chunk_failed(chunk, "its worker was lost (killed, or out of memory)")
    stale = list(
        PredictionChunk.objects.filter(
            Q(status=PredictionChunk.Status.PENDING, enqueued_at__lt=now - lost_after)
            | Q(status=PredictionChunk.Status.RUNNING, lease_expires_at__lt=now)
        ).values_list("pk", flat=True)[:10_000]
    )
    if stale:
        PredictionChunk.objects.filter(pk__in=stale, status=PredictionChunk.Status.RUNNING).update(
            status=PredictionChunk.Status.PENDING
        )
        _send_chunks(stale)
        logger.warning("re-enqueued %d prediction chunks", len(stale))
    return len(stale)


def new_subjects_predict(*, survey: Survey) -> list[PredictionRun]:
    """Newly ingested subjects get predictions from the promoted versions whose band matches."""
    runs = []
    for version in ModelVersion.objects.filter(is_promoted=True, status=ModelVersion.Status.READY):
        if check_survey_facts(version=version, survey=survey):
            continue
        run = prediction_run_start(version=version, survey=survey, only_missing=True)
        if run is not None:
            runs.append(run)
    return runs
