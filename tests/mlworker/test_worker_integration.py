"""A real Celery worker on a real Redis broker: heartbeat, health and a task end to end."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from mlworker.models import WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]


def _database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _wait(predicate, timeout=60.0, step=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.fixture
def worker(isolated_files):
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # the test broker database starts empty
    name = f"itest-{uuid.uuid4().hex[:8]}@localhost"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_MEDIA_ROOT": settings.MEDIA_ROOT,
        "GALAXYLAB_PACK_ROOT": str(settings.GALAXYLAB_PACK_ROOT),
        "GALAXYLAB_RENDER_CACHE": str(settings.GALAXYLAB_RENDER_CACHE),
    }
    log = open(isolated_files / "worker.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default,gpu",
            "-c",
            "1",
            "-n",
            name,
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield name, process, isolated_files / "worker.log"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def test_worker_heartbeat_health_and_preview_task(worker, client, mock_galaxies, isolated_files):
    name, process, log = worker
    assert _wait(lambda: WorkerHeartbeat.objects.filter(hostname=name).exists()), log.read_text()[-3000:]
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
    assert _wait(lambda: len(list(renders.rglob("*.png"))) == 40, timeout=90), log.read_text()[-3000:]
    assert "render_previews" in log.read_text() and "succeeded" in log.read_text()

    # A worker that stops cleanly removes its heartbeat.
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert not WorkerHeartbeat.objects.filter(hostname=name).exists()
