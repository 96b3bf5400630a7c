"""python manage.py train TASK [--variant V] [--set key=value ...] [--wait]"""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from catalog.progress import TqdmProgress
from mlworker.models import TrainingRun
from mlworker.services.training import training_start


def parse_overrides(items: list[str] | None) -> dict:
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f"--set takes key=value, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


class Command(BaseCommand):
    help = (
        "Start a training run on the workers: snapshot the labels, train, evaluate on the held-out split, "
        "register the version, promote it if better, predict. --wait follows its progress."
    )

    def add_arguments(self, parser):
        parser.add_argument("task", help="morphology, emulator, dla or environment")
        parser.add_argument("--variant", default="", help="e.g. the scheme for morphology (candels, gz2).")
        parser.add_argument(
            "--set", action="append", metavar="KEY=VALUE", help="Training option, e.g. epochs=4. Repeatable."
        )
        parser.add_argument("--wait", action="store_true", help="Show progress until the run ends.")
        parser.add_argument(
            "--timeout", type=float, default=24 * 3600, help="With --wait: give up after this many seconds."
        )

    def handle(self, *args, **opts):
        try:
            run = training_start(
                task=opts["task"],
                variant=opts["variant"],
                trigger=TrainingRun.Trigger.CLI,
                config=parse_overrides(opts["set"]),
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"training run #{run.pk} for {run.task}/{run.variant or '-'} queued")
        if not opts["wait"]:
            return
        progress = TqdmProgress(enabled=opts["verbosity"] > 0, unit="epoch")
        deadline, shown_epochs, shown = time.monotonic() + opts["timeout"], None, 0
        try:
            while time.monotonic() < deadline:
                run.refresh_from_db()
                if run.n_epochs and shown_epochs != run.n_epochs:
                    progress.stage(f"run #{run.pk} training", run.n_epochs)
                    shown_epochs, shown = run.n_epochs, 0
                if run.epoch > shown:
                    progress.advance(run.epoch - shown)
                    shown = run.epoch
                if run.status not in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
                    break
                time.sleep(1.0)
        finally:
            progress.close()
        self.stdout.write(run.log)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"training run #{run.pk} {run.status}: {run.error or run.stage}")
        version = run.model_version
        self.stdout.write(
            self.style.SUCCESS(
                f"{version}: held-out {version.primary_metric} {version.primary_value:.4f}{' (promoted)' if version.is_promoted else ''}"
            )
        )
