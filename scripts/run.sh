#!/usr/bin/env bash
# Sets up a fresh machine and runs galaxylab on the embedded defaults: SQLite and a
# filesystem broker under var/, a demo dataset made with the mocks, an admin login printed
# on first start, the web server on 127.0.0.1:8000 and one Celery worker.
# Ctrl-C stops both. GALAXYLAB_HOST / GALAXYLAB_PORT change the address.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh

ensure_venv requirements.txt
export DJANGO_SETTINGS_MODULE=config.settings.local
host=${GALAXYLAB_HOST:-127.0.0.1}
port=${GALAXYLAB_PORT:-8000}
mkdir -p var

echo "==> database"
python manage.py migrate --noinput -v0
echo "==> demo data (first start only)"
python manage.py demo_setup

# One worker for both queues; --beat runs the prediction reconciler (one beat per deployment).
python -m celery -A config worker -Q default,gpu --concurrency 1 -n "local@%h" --beat --loglevel INFO > var/worker.log 2>&1 &
worker=$!
python manage.py runserver "$host:$port" --noreload > var/web.log 2>&1 &
web=$!
stop() {
  trap - EXIT INT TERM
  kill "$web" 2>/dev/null || true
  kill -TERM "$worker" 2>/dev/null || true
  wait "$web" "$worker" 2>/dev/null || true
}
trap stop EXIT INT TERM

echo
echo "galaxylab is running: http://$host:$port/   admin: http://$host:$port/admin/   health: http://$host:$port/health/"
echo "logs: var/web.log, var/worker.log. Ctrl-C stops the server and the worker."
wait "$web"
