"""The embedded SQLite default lets a worker and the web server write at the same time."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import django, os, sys
django.setup()
from django.db import transaction
from django.utils import timezone
from mlworker.models import WorkerHeartbeat
name = sys.argv[1]
for i in range(150):
    with transaction.atomic():
        now = timezone.now()
        WorkerHeartbeat.objects.update_or_create(hostname=f"{name}-{i % 5}", defaults=dict(queues="default", pid=os.getpid(), started_at=now, last_seen=now))
        list(WorkerHeartbeat.objects.all()[:5])
print("ok", name)
"""


def test_two_processes_write_concurrently_without_locking_errors(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("web", "worker", "ingest")
    ]
    results = [w.communicate(timeout=180) for w in writers]
    for writer, (out, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0 and "database is locked" not in err, err
        assert out.startswith("ok")
