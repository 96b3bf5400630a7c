"""Django admin for schemes, projects, votes and gold labels; staff actions call services."""

from django.contrib import admin, messages

from catalog.errors import ApplicationError
from labeling import services
from labeling.models import (
    Answer,
    AnswerCount,
    ClassifierWeight,
    GoldLabel,
    Project,
    ProjectSubject,
    Question,
    Scheme,
    SchemeVersion,
    Skip,
    Vote,
    WeightedFraction,
)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AnswerInline(admin.TabularInline):
    model = Answer
    fk_name = "question"
    extra = 0
    fields = ("key", "label", "shortcut", "next_question", "grid_row", "grid_column")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Scheme)
class SchemeAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "kind", "default_retire_after")
    search_fields = ("slug", "name")
    list_filter = ("kind",)


@admin.register(SchemeVersion)
class SchemeVersionAdmin(ReadOnly):
    """Versions are immutable: a changed scheme is a new version (labeling.services.scheme_version_create)."""

    list_display = ("__str__", "scheme", "number", "created_at")
    list_filter = ("scheme",)
    search_fields = ("scheme__slug",)


@admin.register(Question)
class QuestionAdmin(ReadOnly):
    list_display = ("key", "version", "kind", "position", "required", "default_key")
    list_filter = ("version", "kind")
    search_fields = ("key", "text")
    inlines = [AnswerInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "scheme_version", "survey", "strategy", "retire_after", "gold_rate", "is_active")
    list_filter = ("is_active", "strategy", "scheme_version", "survey")
    search_fields = ("slug", "name")
    filter_horizontal = ("classifiers",)
    actions = ["sync_subjects", "recount"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        added = services.project_subjects_sync(project=obj)
        if added:
            self.message_user(request, f"{added} galaxies added to the subject set of {obj.slug}")

    def delete_model(self, request, obj):
        try:
            services.project_delete(project=obj)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Add galaxies that now pass the project's filters")
    def sync_subjects(self, request, queryset):
        for project in queryset:
            added = services.project_subjects_sync(project=project)
            self.message_user(request, f"{project.slug}: {added} galaxies added")

    @admin.action(description="Recount subjects' votes from the votes")
    def recount(self, request, queryset):
        for project in queryset:
            services.subjects_recount(project=project)
            self.message_user(request, f"{project.slug}: recounted")


@admin.register(ProjectSubject)
class ProjectSubjectAdmin(admin.ModelAdmin):
    list_display = ("galaxy", "project", "n_votes", "retired", "retired_reason", "priority", "active_score", "is_gold")
    list_filter = ("project", "retired", "retired_reason", "is_gold")
    search_fields = ("galaxy__source_id",)
    raw_id_fields = ("galaxy",)
    list_select_related = ("galaxy", "project")
    readonly_fields = ("n_votes", "random_key", "retired_at")
    actions = ["retire", "unretire"]
    show_full_result_count = False

    @admin.action(description="Retire the selected galaxies")
    def retire(self, request, queryset):
        n = sum(
            services.subjects_retire(
                project=p, galaxy_ids=list(queryset.filter(project=p).values_list("galaxy_id", flat=True)), retired=True
            )
            for p in Project.objects.filter(pk__in=queryset.values("project"))
        )
        self.message_user(request, f"{n} retired")

    @admin.action(description="Bring the selected galaxies back (unretire)")
    def unretire(self, request, queryset):
        n = sum(
            services.subjects_retire(
                project=p,
                galaxy_ids=list(queryset.filter(project=p).values_list("galaxy_id", flat=True)),
                retired=False,
            )
            for p in Project.objects.filter(pk__in=queryset.values("project"))
        )
        self.message_user(request, f"{n} unretired")


@admin.register(Vote)
class VoteAdmin(ReadOnly):
    list_display = ("id", "project", "galaxy", "classifier", "is_gold", "seconds_spent", "created_at")
    list_filter = ("project", "is_gold", "scheme_version")
    search_fields = ("classifier__username", "galaxy__source_id")
    list_select_related = ("project", "galaxy", "classifier")
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None):
        return False  # votes are never thrown away from the admin


@admin.register(Skip)
class SkipAdmin(ReadOnly):
    list_display = ("project", "galaxy", "classifier", "created_at")
    list_filter = ("project",)
    search_fields = ("classifier__username", "galaxy__source_id")


@admin.register(AnswerCount)
class AnswerCountAdmin(ReadOnly):
    list_display = ("galaxy", "answer", "count", "fraction")
    list_filter = ("scheme_version",)
    search_fields = ("galaxy__source_id", "answer__key")
    list_select_related = ("galaxy", "answer__question")
    show_full_result_count = False


@admin.register(WeightedFraction)
class WeightedFractionAdmin(ReadOnly):
    list_display = ("galaxy", "answer", "fraction")
    list_filter = ("scheme_version",)
    search_fields = ("galaxy__source_id", "answer__key")
    show_full_result_count = False


@admin.register(ClassifierWeight)
class ClassifierWeightAdmin(ReadOnly):
    list_display = ("classifier", "scheme_version", "consistency", "weight", "n_votes", "updated_at")
    list_filter = ("scheme_version",)
    search_fields = ("classifier__username",)


@admin.register(GoldLabel)
class GoldLabelAdmin(admin.ModelAdmin):
    list_display = ("galaxy", "scheme_version", "created_by", "created_at")
    list_filter = ("scheme_version",)
    search_fields = ("galaxy__source_id", "note")
    raw_id_fields = ("galaxy",)
    filter_horizontal = ("answers",)

    def save_related(self, request, form, formset, change):
        super().save_related(request, form, formset, change)
        gold = form.instance
        try:  # validates the answer set against the scheme and marks the galaxy's subjects as gold
            services.gold_label_set(
                galaxy_id=gold.galaxy_id,
                scheme_version=gold.scheme_version,
                answers=list(gold.answers.values_list("id", flat=True)),
                created_by=request.user,
                note=gold.note,
            )
        except ApplicationError as exc:
            self.message_user(request, f"gold label not usable: {exc.message}", messages.ERROR)
