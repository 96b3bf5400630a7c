"""Platform pages: health, the queue page, training runs with live progress."""

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion
from mlworker import selectors
from mlworker.models import TrainingRun
from mlworker.services.training import training_cancel, training_start


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        return {"ok": False, "vendor": connection.vendor, "error": str(exc)}


def _check_broker() -> dict:
    from kombu import Connection

    url = settings.CELERY_BROKER_URL
    transport = url.split("://", 1)[0]
    try:
        with Connection(url, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return {"ok": True, "transport": transport}
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        return {"ok": False, "transport": transport, "error": str(exc)}


@never_cache
@require_GET
def health(request):
    """Database, broker and worker status; 503 if the database or the broker is down."""
    database = _check_database()
    broker = _check_broker()
    workers = []
    if database["ok"]:
        workers = [
            {"hostname": w.hostname, "queues": w.queues.split(","), "last_seen": w.last_seen.isoformat()}
            for w in selectors.workers_online()
        ]
    healthy = database["ok"] and broker["ok"]
    status = "ok" if healthy and workers else ("degraded" if healthy else "down")
    body = {
        "status": status,
        "database": database,
        "broker": broker,
        "workers": {"ok": bool(workers), "online": workers},
    }
    return JsonResponse(body, status=200 if healthy else 503)


@staff_member_required
@require_GET
def queue(request):
    return render(request, "mlworker/queue.html", selectors.queue_overview())


@staff_member_required
@require_GET
def runs(request):
    context = {
        "runs": TrainingRun.objects.select_related("model_version", "requested_by")[:50],
        "versions": ModelVersion.objects.all()[:50],
        "tasks": ModelTask.choices,
    }
    return render(request, "mlworker/runs.html", context)


@staff_member_required
@require_POST
def run_start(request):
    try:
        run = training_start(
            task=request.POST.get("task", ""),
            variant=request.POST.get("variant", "").strip(),
            trigger=TrainingRun.Trigger.ADMIN,
            user=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("mlworker:runs")
    return redirect("mlworker:run", pk=run.pk)


@staff_member_required
@require_GET
def run_detail(request, pk: int):
    run = get_object_or_404(TrainingRun, pk=pk)
    return render(
        request, "mlworker/run_detail.html", {"run": run, "progress": selectors.training_run_progress(run=run)}
    )


@never_cache
@staff_member_required
@require_GET
def run_progress(request, pk: int):
    return JsonResponse(selectors.training_run_progress(run=get_object_or_404(TrainingRun, pk=pk)))


@staff_member_required
@require_POST
def run_cancel(request, pk: int):
    try:
        training_cancel(run=get_object_or_404(TrainingRun, pk=pk))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("mlworker:run", pk=pk)
