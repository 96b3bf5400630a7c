"""The whole ML path on real workers and a real Redis broker: train, register, promote,
predict, and a worker killed with SIGKILL in the middle of a prediction run."""

import time

import pytest
from django.core.management import call_command

from catalog.models import ModelVersion, Prediction
from mlworker.models import PredictionChunk, PredictionRun, TrainingRun
from mlworker.services.training import training_execute, training_start
from tests.mlworker.conftest import TINY
from tests.mlworker.workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]
TINY_SET = ["epochs=2", "batch_size=16", "channels=[4, 8]", "hidden=8"]


def test_train_register_promote_predict_on_a_real_worker(
    voted_survey, isolated_files, client, admin_user, mock_galaxies
):
    flush_broker()
    worker = Worker(isolated_files, beat=True, env={"GALAXYLAB_PREDICTION_CHUNK": "15"})
    try:
        call_command("train", "morphology", variant="candels", set=TINY_SET, wait=True, timeout=300, verbosity=0)
        run = TrainingRun.objects.get()
        version = ModelVersion.objects.get(is_promoted=True)
        assert run.status == "succeeded" and run.model_version == version and run.worker == worker.name
        assert wait_for(lambda: ModelVersion.objects.get(pk=version.pk).predictions_complete, timeout=180), worker.log()
        assert Prediction.objects.filter(model_version=version).count() == 40
        api = client.get("/api/predictions/", {"task": "morphology", "variant": "candels"}).json()
        assert api["count"] == 40 and "main_class:spheroid" in api["results"][0]["values"]["fractions"]
        assert client.get("/api/model-versions/", {"promoted": "true"}).json()["results"][0]["number"] == 1
        client.force_login(admin_user)
        page = client.get("/admin/catalog/prediction/").content.decode()
        assert "morphology/candels v1" in page
        # Newly ingested subjects get predictions from the promoted version by themselves.
        call_command(
            "ingest_galaxies",
            str(mock_galaxies / "catalog.csv"),
            survey="g2",
            cutouts=str(mock_galaxies / "cutouts"),
            band="F160W",
            verbosity=0,
        )
        assert wait_for(
            lambda: Prediction.objects.filter(model_version=version, galaxy__survey__name="g2").count() == 40,
            timeout=180,
        ), worker.log()
    finally:
        worker.stop()


def freeze_mid_chunk(worker: Worker, prediction_run: PredictionRun, timeout: float = 60.0) -> bool:
    """Freezes the worker (SIGSTOP) while one of the run's chunks is claimed and not yet written.

    A chunk of a tiny model is claimed for a few milliseconds only: a worker seen working
    may have committed it before a kill lands. A frozen worker commits nothing more, so the
    chunk seen running after the freeze (and a moment for a commit already on the wire) is
    the one the kill interrupts; otherwise the worker is thawed and watched again."""
    running = PredictionChunk.objects.filter(run=prediction_run, status="running")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running.exists():
            time.sleep(0.01)
            continue
        worker.pause()
        time.sleep(0.2)
        if running.exists():
            return True
        worker.resume()
    return False


def test_a_worker_killed_mid_run_loses_nothing(voted_survey, isolated_files, settings):
    settings.GALAXYLAB_PREDICTION_CHUNK = 5
    flush_broker()
    run = training_start(task="morphology", variant="candels", trigger="cli", config=TINY)
    training_execute(run_id=run.pk)  # in-process: registers v1 and queues 8 prediction chunks
    version = ModelVersion.objects.get()
    prediction_run = PredictionRun.objects.get(model_version=version)
    assert prediction_run.n_chunks == 8
    lease = {"GALAXYLAB_PREDICTION_LEASE_SECONDS": "3", "GALAXYLAB_PREDICTION_LOST_SECONDS": "8"}
    first = Worker(isolated_files, env=lease)
    try:
        assert freeze_mid_chunk(first, prediction_run), first.log()
        first.kill()
    finally:
        first.stop()
    killed = PredictionChunk.objects.filter(run=prediction_run, status="running").values_list("pk", flat=True)
    assert len(killed) == 1 and PredictionRun.objects.get(pk=prediction_run.pk).status != "complete"
    started = time.monotonic()
    second = Worker(isolated_files, beat=True, env=lease)
    try:
        assert wait_for(lambda: PredictionRun.objects.get(pk=prediction_run.pk).status == "complete", timeout=120), (
            second.log()
        )
        elapsed = time.monotonic() - started
    finally:
        second.stop()
    assert elapsed < 90  # lease (3 s) + one reconciler beat (15 s) + the work, well inside the bound
    assert Prediction.objects.filter(model_version=version).count() == 40
    assert Prediction.objects.filter(model_version=version).values("galaxy").distinct().count() == 40
    chunk = PredictionChunk.objects.get(pk=killed[0])
    assert chunk.status == "done" and chunk.attempts >= 2
    version.refresh_from_db()
    assert version.predictions_complete
