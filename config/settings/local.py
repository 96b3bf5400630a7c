"""The quick start: SQLite and a filesystem broker under var/, no servers needed."""

from pathlib import Path

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR, database_from_url, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-development-only-not-secret")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

DATABASES = {
    "default": database_from_url(env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'galaxylab.sqlite3'}"))
}

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    # One folder in and out: every process on this machine shares the same queues.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Static files come from the app folders directly (no collectstatic on a laptop).
WHITENOISE_USE_FINDERS = True
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # noqa: F405
