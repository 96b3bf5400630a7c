"""Django setup for benchmarks: PostgreSQL by default (BENCH_DATABASE_URL), created if missing."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "var" / "bench"


def setup(default_db: str = "postgres://postgres@127.0.0.1:5432/galaxylab_bench") -> str:
    url = os.environ.get("BENCH_DATABASE_URL", default_db)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ.setdefault("DJANGO_MEDIA_ROOT", str(WORK / "media"))
    os.environ.setdefault("GALAXYLAB_PACK_ROOT", str(WORK / "packs"))
    os.environ.setdefault("GALAXYLAB_RENDER_CACHE", str(WORK / "renders"))
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")  # previews are not part of the figures
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[1]
        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    WORK.mkdir(parents=True, exist_ok=True)
    return url


def commit() -> str:
    import subprocess

    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
