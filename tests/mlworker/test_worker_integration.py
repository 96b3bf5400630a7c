"""A real Celery worker on a real Redis broker: heartbeat, health and a task end to end."""

import signal

import pytest
from django.core.management import call_command

from mlworker.models import WorkerHeartbeat
from tests.mlworker.workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]


@pytest.fixture
def worker(isolated_files):
    flush_broker()  # the test broker database starts empty
    started = Worker(isolated_files)
    yield started.name, started.process, started.log_path
    started.stop()


def test_worker_heartbeat_health_and_preview_task(worker, client, mock_galaxies, isolated_files):
    name, process, log = worker
    assert wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=name).exists()), log.read_text()[-3000:]
    health = client.get("/health/").json()
    assert health["status"] == "ok" and health["broker"]["transport"] == "redis"
    assert name in [w["hostname"] for w in health["workers"]["online"]]

    # An ingest queues the preview task on commit; the worker renders every cutout.
    call_command(
        "ingest_galaxies",
        str(mock_galaxies / "catalog.csv"),
        survey="g",
        cutouts=str(mock_galaxies / "cutouts"),
        band="F160W",
        verbosity=0,
    )
    renders = isolated_files / "renders" / "cutouts"
    assert wait_for(lambda: len(list(renders.rglob("*.png"))) == 40, timeout=90), log.read_text()[-3000:]
    assert "render_previews" in log.read_text() and "succeeded" in log.read_text()

    # A worker that stops cleanly removes its heartbeat.
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert not WorkerHeartbeat.objects.filter(hostname=name).exists()
