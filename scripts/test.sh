#!/usr/bin/env bash
# Runs the whole test suite: lint, then pytest against PostgreSQL and Redis (DATABASE_URL,
# CELERY_BROKER_URL; local defaults below), then again on the embedded SQLite default.
# With GALAXYLAB_REQUIRE_SERVICES=1 (CI) a missing service fails the run instead of
# skipping the tests that need it. Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh

ensure_venv requirements-dev.txt
DEBIAN_PACKAGES=(chromium)  # the browser tests drive Debian's chromium with Playwright
[ ${#DEBIAN_PACKAGES[@]} -eq 0 ] || ensure_debian_packages "${DEBIAN_PACKAGES[@]}"
export DJANGO_SETTINGS_MODULE=config.settings.test
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/galaxylab}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
mkdir -p var

echo "==> lint"
python -m ruff check .
python -m ruff format --check . >/dev/null || { python -m ruff format --check .; exit 1; }
python manage.py makemigrations --check --dry-run -v0 || { echo "models changed without migrations" >&2; exit 1; }

if python -c "import os, socket, urllib.parse as u; p = u.urlparse(os.environ['DATABASE_URL']); socket.create_connection((p.hostname, p.port or 5432), 2)" 2>/dev/null; then
  echo "==> tests on PostgreSQL ($DATABASE_URL) with the broker at $CELERY_BROKER_URL"
  python -m pytest "$@"
elif [ "${GALAXYLAB_REQUIRE_SERVICES:-0}" = "1" ]; then
  echo "PostgreSQL at $DATABASE_URL is not reachable and GALAXYLAB_REQUIRE_SERVICES=1" >&2
  exit 1
else
  echo "==> PostgreSQL at $DATABASE_URL is not reachable: skipping the PostgreSQL run (start it to run it)"
fi

echo "==> tests on the embedded SQLite default"
# Tests marked postgres (PostgreSQL-only behaviour, e.g. the concurrency test) run in the first pass.
DATABASE_URL="sqlite:///$PWD/var/test-galaxylab.sqlite3" python -m pytest -m "not postgres" "$@"
