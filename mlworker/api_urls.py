from django.urls import path

from mlworker import api

app_name = "mlworker-api"
urlpatterns = [
    path("training-runs/", api.TrainingRuns.as_view(), name="training-runs"),
    path("training-runs/<int:pk>/", api.TrainingRunDetail.as_view(), name="training-run"),
    path("training-runs/<int:pk>/cancel/", api.TrainingRunCancel.as_view(), name="training-run-cancel"),
    path("model-versions/", api.ModelVersions.as_view(), name="model-versions"),
    path("model-versions/<int:pk>/promote/", api.PromoteVersion.as_view(), name="model-version-promote"),
    path("model-versions/rollback/", api.RollbackVersion.as_view(), name="model-version-rollback"),
    path("predictions/", api.Predictions.as_view(), name="predictions"),
]
