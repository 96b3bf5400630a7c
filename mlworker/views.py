"""Platform pages: health, the queue page, training runs with live progress."""

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
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


# ---- model against humans -------------------------------------------------------------------
def _version_from(request, variant: str) -> ModelVersion:
    from mlworker.comparison import morphology_version

    number = request.GET.get("version", "")
    if number and not number.isdigit():
        raise ApplicationError(f"version must be a version number, got {number!r}")
    return morphology_version(variant=variant, number=int(number) if number else None)


@require_GET
def morphology_compare(request, variant: str):
    """How a morphology version (the promoted one, or ?version=N) compares with the humans on
    held-out galaxies: table with intervals, plots, confusion matrix, largest disagreements."""
    from mlworker import comparison

    try:
        version = _version_from(request, variant)
        report = comparison.comparison(version)
    except ApplicationError as exc:
        return render(request, "catalog/error.html", {"message": exc.message}, status=404)
    held_out = request.GET.get("held_out") == "1"
    versions = ModelVersion.objects.filter(task=ModelTask.MORPHOLOGY, variant=variant).order_by("-number")
    from labeling.models import Project

    project = Project.objects.filter(scheme_version__scheme__slug=variant, is_active=True).order_by("pk").first()
    return render(
        request,
        "mlworker/compare.html",
        {
            "version": version,
            "versions": versions,
            "report": report,
            "rows": comparison.comparison_rows(report),
            "confusions": [
                {
                    "label": comparison.BASELINE_LABELS.get(name, name),
                    "classes": by["confusion"]["classes"],
                    "rows": list(zip(by["confusion"]["classes"], by["confusion"]["matrix"], strict=True)),
                    "agreement": by["confusion"]["agreement"],
                }
                for name, by in report["by"].items()
            ],
            "disagreements": comparison.disagreements(version=version, limit=50, held_out_only=held_out),
            "held_out": held_out,
            "project": project,
        },
    )


def _plot_response(plots: dict, kind: str, version: ModelVersion, max_age: int) -> HttpResponse:

    if kind not in plots:
        raise Http404(f"no plot {kind!r}")
    try:
        body = plots[kind](version)
    except ApplicationError as exc:
        raise Http404(exc.message) from None
    response = HttpResponse(body, content_type="image/png")
    response["Cache-Control"] = f"public, max-age={max_age}"
    return response


@require_GET
def morphology_plot(request, pk: int, kind: str):
    from mlworker import comparison

    version = get_object_or_404(ModelVersion, pk=pk, task=ModelTask.MORPHOLOGY)
    plots = {
        "predicted-vs-human": comparison.plot_predicted_vs_human,
        "bias-vs-magnitude": comparison.plot_bias_vs_magnitude,
    }
    return _plot_response(plots, kind, version, 86400)  # a version's held-out plots never change


# ---- the GALFIT emulator against the truth and the reference fit -------------------------------
@require_GET
def emulator_compare(request):
    """The promoted emulator (or ?version=N): held-out mocks against the truth, the reference
    fit against the truth on a sample, emulator against fit on data, speed per core."""
    from mlworker import emulator_comparison

    number = request.GET.get("version", "")
    try:
        if number and not number.isdigit():
            raise ApplicationError(f"version must be a version number, got {number!r}")
        version = emulator_comparison.emulator_version(number=int(number) if number else None)
        report = emulator_comparison.report(version=version)
    except ApplicationError as exc:
        return render(request, "catalog/error.html", {"message": exc.message}, status=404)
    held = report["held_out"]
    sample = held["fitted_sample"]
    tables = [("Emulator against the truth (held-out mocks)", held["emulator_vs_truth"])]
    if sample:
        tables += [
            (
                f"Reference fit against the truth ({sample['n']} of them, {sample['failures']} failed fits)",
                sample["fitter_vs_truth"],
            ),
            ("Emulator against the truth (the same galaxies)", sample["emulator_vs_truth"]),
            ("Emulator against the reference fit (the same galaxies)", sample["emulator_vs_fitter"]),
        ]
    data = report["data"]
    if data and data.get("n"):
        tables.append(
            (
                f"Emulator against the reference fit on data without truth ({data['n']} subjects)",
                data["emulator_vs_fit"],
            )
        )
    return render(
        request,
        "mlworker/compare_emulator.html",
        {
            "version": version,
            "versions": ModelVersion.objects.filter(task=ModelTask.EMULATOR, variant="mock").order_by("-number"),
            "report": report,
            "tables": [(title, emulator_comparison.table_rows(t)) for title, t in tables],
        },
    )


@require_GET
def emulator_plot(request, pk: int, kind: str):
    from mlworker import emulator_comparison

    version = get_object_or_404(ModelVersion, pk=pk, task=ModelTask.EMULATOR)
    plots = {"held-out": emulator_comparison.plot_held_out, "data": emulator_comparison.plot_data}
    return _plot_response(plots, kind, version, 300 if kind == "data" else 86400)  # data grow as fits come in


# ---- environment: the methods against the truth and against each other ------------------------
@require_GET
def environment_compare(request):
    """Every environment method on the held-out mock light cone (Spearman with the true density,
    the densest 10%, xi(s) against the truth's), and on a survey (?survey=NAME) how the methods
    agree with each other."""
    from catalog.models import Survey
    from mlworker import environment

    versions = environment.method_versions()
    survey_name = request.GET.get("survey", "")
    agreement = None
    if survey_name:
        survey = Survey.objects.filter(name=survey_name).first()
        if survey is None:
            return render(request, "catalog/error.html", {"message": f"no survey {survey_name!r}"}, status=404)
        agreement = environment.survey_agreement(versions=versions, survey=survey)
    return render(
        request,
        "mlworker/compare_environment.html",
        {
            "rows": environment.comparison_rows(versions),
            "agreement": agreement,
            "survey": survey_name,
            "surveys": Survey.objects.filter(kind=Survey.Kind.IMAGING).order_by("name"),
        },
    )


@require_GET
def environment_xi_png(request):
    from mlworker import environment

    versions = environment.method_versions()
    if not versions:
        raise Http404("no environment method has been measured yet")
    response = HttpResponse(environment.xi_png(versions), content_type="image/png")
    response["Cache-Control"] = "public, max-age=300"
    return response
