"""Starting real Celery workers (subprocesses) against the test database and Redis broker."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def wait_for(predicate, timeout: float = 60.0, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


class Worker:
    """A celery worker process group: started with the test settings, stopped or killed."""

    def __init__(self, directory: Path, *, beat: bool = False, env: dict | None = None):
        self.name = f"itest-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path = directory / f"worker-{self.name.split('@')[0]}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        environment |= {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "GALAXYLAB_PACK_ROOT": str(settings.GALAXYLAB_PACK_ROOT),
            "GALAXYLAB_RENDER_CACHE": str(settings.GALAXYLAB_RENDER_CACHE),
            "CELERY_BEAT_SCHEDULE_FILENAME": str(directory / f"beat-{uuid.uuid4().hex[:6]}"),
            **(env or {}),
        }
        command = [
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
            self.name,
            "--loglevel",
            "INFO",
        ]
        if beat:
            command.append("--beat")
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    def pause(self) -> None:
        """SIGSTOP to the whole process group: frozen where it stands, mid-task included."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL to the whole process group: the parent and its pool children die at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        if not self._log.closed:
            self._log.close()


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
