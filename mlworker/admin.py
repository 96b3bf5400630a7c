from django.contrib import admin

from mlworker.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "queues", "concurrency", "pid", "started_at", "last_seen")
    search_fields = ("hostname", "queues")
    list_filter = ("queues",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
