"""Django admin of the ML platform: retrain, promote and roll back from the model versions,
start and watch training runs, inspect prediction runs and predictions."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from catalog.errors import ApplicationError
from catalog.models import DatasetExport, ModelTask, ModelVersion, Prediction
from mlworker import selectors
from mlworker.models import PredictionChunk, PredictionRun, TaskFailure, TrainingRun, WorkerHeartbeat
from mlworker.services.training import model_version_promote, model_version_rollback, training_cancel, training_start


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnly):
    list_display = ("hostname", "queues", "concurrency", "pid", "started_at", "last_seen")
    search_fields = ("hostname", "queues")
    list_filter = ("queues",)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "status",
        "is_promoted",
        "primary_metric",
        "primary_value",
        "band",
        "predictions_complete",
        "created_at",
    )
    list_filter = ("task", "variant", "status", "is_promoted")
    search_fields = ("task", "variant")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["retrain", "promote", "rollback"]

    def has_add_permission(self, request):
        return False  # versions come from training runs

    @admin.action(description="Retrain: start a new training run for the selected task and variant")
    def retrain(self, request, queryset):
        last = None
        for task, variant in sorted(set(queryset.values_list("task", "variant"))):
            try:
                last = training_start(task=task, variant=variant, trigger=TrainingRun.Trigger.ADMIN, user=request.user)
                self.message_user(
                    request, f"training run #{last.pk} for {task}/{variant or '-'} queued", messages.SUCCESS
                )
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        if last is not None:
            return redirect(reverse("admin:mlworker_trainingrun_change", args=[last.pk]))
        return None

    @admin.action(description="Promote the selected version")
    def promote(self, request, queryset):
        for version in queryset:
            try:
                model_version_promote(version=version)
                self.message_user(request, f"{version} promoted", messages.SUCCESS)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description="Roll back: promote the previous ready version")
    def rollback(self, request, queryset):
        for task, variant in sorted(set(queryset.values_list("task", "variant"))):
            try:
                version = model_version_rollback(task=task, variant=variant)
                self.message_user(request, f"{version} promoted again", messages.SUCCESS)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)


class StartTrainingForm(forms.ModelForm):
    task = forms.ChoiceField(choices=ModelTask.choices)

    class Meta:
        model = TrainingRun
        fields = ["task", "variant", "config"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "task",
        "variant",
        "status",
        "stage",
        "epoch",
        "n_epochs",
        "loss",
        "model_version",
        "trigger",
        "created_at",
    )
    list_filter = ("status", "task", "trigger")
    search_fields = ("task", "variant", "log", "error")
    actions = ["cancel"]
    change_form_template = "admin/mlworker/trainingrun/change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = StartTrainingForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["task", "variant", "config"] if obj is None else ["live_progress"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["live_progress"]

    def has_change_permission(self, request, obj=None):
        return obj is None or request.method == "GET"

    def save_model(self, request, obj, form, change):
        """ "Adding" a run starts one through the service (refused if one is active)."""
        run = training_start(
            task=form.cleaned_data["task"],
            variant=form.cleaned_data["variant"],
            trigger=TrainingRun.Trigger.ADMIN,
            user=request.user,
            config=form.cleaned_data["config"] or {},
        )
        obj.pk = run.pk

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect(reverse("admin:mlworker_trainingrun_changelist"))

    @admin.display(description="progress")
    def live_progress(self, obj):
        return format_html('<a href="{}">open the live progress page</a>', reverse("mlworker:run", args=[obj.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = {"run": run, "progress": selectors.training_run_progress(run=run)} if run else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    @admin.action(description="Cancel the selected runs")
    def cancel(self, request, queryset):
        for run in queryset:
            try:
                training_cancel(run=run)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)


@admin.register(DatasetExport)
class DatasetExportAdmin(ReadOnly):
    list_display = ("__str__", "task", "variant", "n_train", "n_test", "created_at")
    list_filter = ("task", "variant")
    search_fields = ("path",)


class PredictionChunkInline(admin.TabularInline):
    model = PredictionChunk
    extra = 0
    fields = ("index", "status", "attempts", "worker", "lease_expires_at", "updated_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PredictionRun)
class PredictionRunAdmin(ReadOnly):
    list_display = (
        "__str__",
        "model_version",
        "survey",
        "status",
        "n_subjects",
        "n_chunks",
        "forced",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "forced", "survey")
    search_fields = ("model_version__task",)
    inlines = [PredictionChunkInline]


@admin.register(Prediction)
class PredictionAdmin(ReadOnly):
    list_display = ("__str__", "model_version", "galaxy", "uncertainty", "out_of_distribution", "created_at")
    list_filter = ("model_version", "out_of_distribution")
    search_fields = ("galaxy__source_id",)
    raw_id_fields = ("galaxy", "spectrum", "mock_image")
    list_select_related = ("model_version", "galaxy__survey")
    show_full_result_count = False


@admin.register(TaskFailure)
class TaskFailureAdmin(ReadOnly):
    list_display = ("task_name", "worker", "created_at")
    search_fields = ("task_name", "error")
