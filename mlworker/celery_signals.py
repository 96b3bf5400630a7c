"""Task failures recorded for the queue page (works on every broker and result backend)."""

import contextlib

from celery.signals import task_failure


@task_failure.connect
def record_failure(sender=None, task_id=None, exception=None, **kwargs) -> None:
    from mlworker.models import TaskFailure

    # Recording a failure must never fail the worker.
    with contextlib.suppress(Exception):
        TaskFailure.objects.create(
            task_name=getattr(sender, "name", str(sender)),
            task_id=task_id or "",
            worker=getattr(getattr(sender, "request", None), "hostname", "") or "",
            error=f"{type(exception).__name__}: {exception}"[:4000],
        )
