"""Training runs, the registry (promote, roll back) and chunked predictions, run in-process."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.errors import ApplicationError, Conflict
from catalog.models import Band, ModelVersion, Prediction
from mlworker.models import PredictionChunk, PredictionRun, TrainingRun
from mlworker.services import predictions as P
from mlworker.services.training import model_version_promote, model_version_rollback, training_execute, training_start
from tests.mlworker.conftest import TINY

pytestmark = pytest.mark.django_db


def run_chunks() -> None:
    for chunk in PredictionChunk.objects.filter(status=PredictionChunk.Status.PENDING):
        P.prediction_chunk_execute(chunk_id=chunk.pk, worker="test")


def test_train_register_promote_predict(voted_survey):
    run = training_start(task="morphology", variant="candels", trigger=TrainingRun.Trigger.CLI, config=TINY)
    with pytest.raises(Conflict, match="already queued"):
        training_start(task="morphology", variant="candels", trigger=TrainingRun.Trigger.API)
    assert training_execute(run_id=run.pk, worker="test") == "succeeded"
    run.refresh_from_db()
    version = run.model_version
    assert run.status == "succeeded" and run.epoch == 2 and "held-out rmse" in run.log
    assert version.is_promoted and version.number == 1 and version.status == "ready"
    assert version.dataset.n_train + version.dataset.n_test == 40 and version.dataset.n_test == 8
    assert set(version.metrics["per_answer"]) >= {"main_class:spheroid", "main_class:disk"}
    assert (version.band, version.pixel_scale_arcsec, version.psf_fwhm_arcsec) == ("F160W", 0.06, 0.18)
    assert not version.predictions_complete
    assert PredictionRun.objects.get(model_version=version).n_chunks == 3
    run_chunks()
    version.refresh_from_db()
    assert version.predictions_complete
    assert Prediction.objects.filter(model_version=version).count() == 40
    p = Prediction.objects.filter(model_version=version).first()
    assert set(p.values["fractions"]) == set(version.metrics["per_answer"]) == set(p.values["sigma"])
    assert p.uncertainty > 0
    # A second run: the new version is promoted only if it is better; rollback promotes the previous one.
    second = training_start(
        task="morphology", variant="candels", trigger=TrainingRun.Trigger.CLI, config={**TINY, "seed": 1}
    )
    training_execute(run_id=second.pk)
    v2 = ModelVersion.objects.get(number=2)
    assert ModelVersion.objects.filter(is_promoted=True).count() == 1
    model_version_promote(version=v2)
    assert model_version_rollback(task="morphology", variant="candels").number == 1
    with pytest.raises(ApplicationError, match="nothing to roll back to"):
        model_version_rollback(task="morphology", variant="candels")


def test_chunks_are_idempotent_and_the_reconciler_finds_lost_ones(voted_survey, monkeypatch):
    run = training_start(task="morphology", variant="candels", trigger=TrainingRun.Trigger.CLI, config=TINY)
    training_execute(run_id=run.pk)
    version = ModelVersion.objects.get()
    chunks = list(PredictionChunk.objects.order_by("index"))
    sent = []
    monkeypatch.setattr(P, "_send_chunks", lambda ids: sent.extend(ids))
    # Nothing is stale yet.
    PredictionChunk.objects.update(enqueued_at=timezone.now())
    assert P.predictions_reconcile() == 0
    # A message lost by the broker (pending long ago) and a worker killed mid-chunk (lease expired).
    PredictionChunk.objects.filter(pk=chunks[0].pk).update(enqueued_at=timezone.now() - timezone.timedelta(hours=1))
    PredictionChunk.objects.filter(pk=chunks[1].pk).update(
        status="running", lease_expires_at=timezone.now() - timezone.timedelta(seconds=1)
    )
    PredictionChunk.objects.filter(pk=chunks[2].pk).update(
        status="running", lease_expires_at=timezone.now() + timezone.timedelta(minutes=1)
    )
    assert P.predictions_reconcile() == 2 and set(sent) == {chunks[0].pk, chunks[1].pk}
    # A chunk held by a live worker is not taken; the others are, and running one twice writes nothing twice.
    assert P.prediction_chunk_execute(chunk_id=chunks[2].pk).startswith("skipped")
    P.prediction_chunk_execute(chunk_id=chunks[0].pk)
    PredictionChunk.objects.filter(pk=chunks[0].pk).update(status="pending")
    P.prediction_chunk_execute(chunk_id=chunks[0].pk)
    P.prediction_chunk_execute(chunk_id=chunks[1].pk)
    assert Prediction.objects.filter(model_version=version).count() == 30
    version.refresh_from_db()
    assert not version.predictions_complete
    PredictionChunk.objects.filter(pk=chunks[2].pk).update(
        lease_expires_at=timezone.now() - timezone.timedelta(seconds=1)
    )
    P.prediction_chunk_execute(chunk_id=chunks[2].pk)
    version.refresh_from_db()
    assert version.predictions_complete and Prediction.objects.filter(model_version=version).count() == 40


def test_new_subjects_are_predicted_once(voted_survey):
    """After an ingest, only subjects with no prediction that no unfinished run covers get a new run."""
    run = training_start(task="morphology", variant="candels", trigger=TrainingRun.Trigger.CLI, config=TINY)
    training_execute(run_id=run.pk)
    version = ModelVersion.objects.get()
    assert P.new_subjects_predict(survey=voted_survey) == [] and PredictionRun.objects.count() == 1
    first, second, failed = PredictionChunk.objects.order_by("index")
    PredictionChunk.objects.filter(pk=failed.pk).update(status=PredictionChunk.Status.FAILED)
    P.prediction_chunk_execute(chunk_id=first.pk)
    P.prediction_chunk_execute(chunk_id=second.pk)
    (again,) = P.new_subjects_predict(survey=voted_survey)
    assert again.n_subjects == len(failed.subject_ids) == 10
    assert again.chunks.get().subject_ids == sorted(failed.subject_ids)
    run_chunks()
    assert P.new_subjects_predict(survey=voted_survey) == [] and PredictionRun.objects.count() == 2
    assert Prediction.objects.filter(model_version=version).count() == 40


def test_a_chunk_that_keeps_failing_is_given_up_and_its_subjects_predicted_later(voted_survey, monkeypatch, settings):
    settings.GALAXYLAB_PREDICTION_MAX_ATTEMPTS = 2
    run = training_start(task="morphology", variant="candels", trigger=TrainingRun.Trigger.CLI, config=TINY)
    training_execute(run_id=run.pk)
    version = ModelVersion.objects.get()
    first, second, poisoned = PredictionChunk.objects.order_by("index")
    spec = P.task_spec("morphology")
    real_predict = spec.predict

    def predict(version, loaded, ids, device, survey=None):
        if set(ids) & set(poisoned.subject_ids):
            raise OSError("cutout pack unreadable")
        return real_predict(version, loaded, ids, device)

    monkeypatch.setattr(type(spec), "predict", staticmethod(predict))
    P.prediction_chunk_execute(chunk_id=first.pk)
    P.prediction_chunk_execute(chunk_id=second.pk)
    with pytest.raises(OSError):
        P.prediction_chunk_execute(chunk_id=poisoned.pk)
    poisoned.refresh_from_db()
    assert poisoned.status == "pending" and "attempt 1: OSError: cutout pack unreadable" in poisoned.error
    with pytest.raises(OSError):
        P.prediction_chunk_execute(chunk_id=poisoned.pk)
    poisoned.refresh_from_db()
    version.refresh_from_db()
    assert poisoned.status == "failed" and poisoned.attempts == 2
    assert PredictionRun.objects.get().status == "failed" and not version.predictions_complete
    # A chunk whose worker died on its last allowed try is given up by the reconciler.
    PredictionChunk.objects.filter(pk=second.pk).update(
        status="running", attempts=2, lease_expires_at=timezone.now() - timezone.timedelta(seconds=1)
    )
    monkeypatch.setattr(P, "_send_chunks", lambda ids: None)
    assert P.predictions_reconcile() == 0
    assert PredictionChunk.objects.get(pk=second.pk).status == "failed"
    # Once the cause is fixed, the missing subjects are predicted and the version is complete.
    monkeypatch.setattr(type(spec), "predict", staticmethod(real_predict))
    (retry,) = P.new_subjects_predict(survey=voted_survey)
    assert retry.n_subjects == len(poisoned.subject_ids)  # the second chunk's predictions were written before
    run_chunks()
    version.refresh_from_db()
    assert version.predictions_complete and version.predictions.count() == 40


def test_other_survey_facts_need_an_override(voted_survey, mock_galaxies, tmp_path):
    run = training_start(task="morphology", variant="candels", trigger=TrainingRun.Trigger.CLI, config=TINY)
    training_execute(run_id=run.pk)
    call_command(
        "ingest_galaxies",
        str(mock_galaxies / "catalog.csv"),
        survey="wide",
        cutouts=str(mock_galaxies / "cutouts"),
        band="F160W",
        verbosity=0,
    )
    Band.objects.filter(survey__name="wide").update(psf_fwhm_arcsec=0.4)
    with pytest.raises(CommandError, match=r"PSF FWHM 0.4\" differs .* --force"):
        call_command("predict", "morphology", variant="candels", survey="wide", verbosity=0)
    call_command("predict", "morphology", variant="candels", survey="wide", force=True, verbosity=0)
    assert PredictionRun.objects.get(survey__name="wide").forced


def test_training_refuses_unknown_options_and_tasks(voted_survey):
    with pytest.raises(ApplicationError, match="unknown training options"):
        training_start(task="morphology", variant="candels", trigger="cli", config={"epochz": 3})
    with pytest.raises(ApplicationError, match="is not trained"):
        training_start(task="environment", variant="sort", trigger="cli")
    with pytest.raises(CommandError, match="unknown task"):
        call_command("train", "astrology", verbosity=0)


def test_cancel_and_failure(voted_survey):
    from mlworker.services.training import training_cancel

    run = training_start(task="morphology", variant="candels", trigger="cli", config=TINY)
    training_cancel(run=run)
    assert TrainingRun.objects.get(pk=run.pk).status == "cancelled"
    assert training_execute(run_id=run.pk) == "not active"
    failing = training_start(task="morphology", variant="gz2", trigger="cli", config=TINY)
    with pytest.raises(ApplicationError, match="too few to train"):
        training_execute(run_id=failing.pk)
    failing.refresh_from_db()
    assert failing.status == "failed" and "too few" in failing.error
