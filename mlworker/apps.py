from django.apps import AppConfig


class MlworkerConfig(AppConfig):
    name = "mlworker"
    verbose_name = "ML workers"

    def ready(self) -> None:
        # Registers the worker heartbeat bootstep with the Celery app.
        from mlworker import celery_signals, heartbeat  # noqa: F401
