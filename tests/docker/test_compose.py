"""The production compose file and Dockerfile describe the stack the README promises."""

from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_services_and_their_roles():
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker-cpu", "worker-gpu", "migrate"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["web"]["ports"] == ["8000:8000"]
    assert "-Q" in services["worker-cpu"]["command"] and "default" in services["worker-cpu"]["command"]
    gpu = services["worker-gpu"]
    assert gpu["command"][gpu["command"].index("-Q") + 1] == "gpu"
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["build"]["target"] == "gpu"


def test_every_app_service_gets_production_settings_and_secrets_from_the_environment():
    services = _compose()["services"]
    for name in ("web", "worker-cpu", "worker-gpu", "migrate"):
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        for key in ("DJANGO_SECRET_KEY", "ALLOWED_HOSTS"):
            assert env[key].startswith("${") and ":?" in env[key], (
                f"{name}: {key} must be required from the environment"
            )
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    for name in ("web", "worker-cpu", "worker-gpu"):
        assert "data:/data" in services[name]["volumes"], "web and workers share the files and packs"


def test_dockerfile_targets():
    text = (DOCKER / "Dockerfile").read_text()
    assert "FROM python:3.11" in text and "AS cpu" in text and "AS gpu" in text
    assert "gunicorn" in text and "config.wsgi:application" in text
    assert "collectstatic" in text
    assert "whl/cpu" in text  # the CPU image must not pull the CUDA build of torch
