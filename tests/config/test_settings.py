"""Settings: production refuses to start without its secrets; check --deploy is clean."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-0123456789",
    "ALLOWED_HOSTS": "galaxylab.example.org",
    "DATABASE_URL": "postgres://galaxylab:pw@127.0.0.1:5432/galaxylab",
}


def _manage(*args, env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "ALLOWED_HOSTS"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"])
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_check_deploy_is_clean():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout


def test_sqlite_is_configured_for_concurrent_writers():
    from config.settings.base import database_from_url

    config = database_from_url("sqlite:////tmp/x.sqlite3")
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["timeout"] >= 20


def test_local_settings_need_no_servers():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; django.setup(); from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, sorted(s.CELERY_BROKER_TRANSPORT_OPTIONS))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
        | {"DJANGO_SETTINGS_MODULE": "config.settings.local"},
    )
    assert result.returncode == 0, result.stderr
    assert "sqlite3 filesystem://" in result.stdout and "data_folder_in" in result.stdout


def test_celery_routing():
    from config.celery_app import app

    assert app.conf.task_acks_late and app.conf.worker_prefetch_multiplier == 1
    assert {q.name for q in app.conf.task_queues} == {"default", "gpu"}
    router = app.amqp.router
    assert router.route({}, "mlworker.tasks.train_morphology")["queue"].name == "gpu"
    assert router.route({}, "mlworker.tasks.predict_dla")["queue"].name == "gpu"
    assert router.route({}, "catalog.tasks.render_previews")["queue"].name == "default"
    assert settings.CELERY_BROKER_URL
