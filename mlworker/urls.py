from django.urls import path

from mlworker import views

app_name = "mlworker"
urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("runs/", views.runs, name="runs"),
    path("runs/start/", views.run_start, name="run-start"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>.json", views.run_progress, name="run-progress"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("compare/morphology/<slug:variant>/", views.morphology_compare, name="compare"),
    path("versions/<int:pk>/<slug:kind>.png", views.morphology_plot, name="plot"),
    path("compare/emulator/", views.emulator_compare, name="compare-emulator"),
    path("compare/environment/", views.environment_compare, name="compare-environment"),
    path("compare/environment/xi.png", views.environment_xi_png, name="environment-xi"),
    path("versions/<int:pk>/emulator/<slug:kind>.png", views.emulator_plot, name="emulator-plot"),
]
