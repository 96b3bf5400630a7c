"""python manage.py predict TASK [--variant V] [--version N] [--survey NAME] [--force] [--only-missing] [--wait]"""

import time

from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from catalog.models import ModelVersion, Survey
from catalog.progress import TqdmProgress
from mlworker.models import PredictionChunk
from mlworker.services.predictions import prediction_run_start, prediction_runs_for_version


class Command(BaseCommand):
    help = "Apply a model version (default: the promoted one) to a survey, in chunks on the workers."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version is the model version; Django's own --version (of Django) gives way.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("task")
        parser.add_argument("--variant", default="")
        parser.add_argument("--version", dest="number", type=int, help="Version number (default: the promoted one).")
        parser.add_argument("--survey", help="Survey to predict for (default: every survey with the model's band).")
        parser.add_argument(
            "--force", action="store_true", help="Apply to a survey whose band facts differ from the training set."
        )
        parser.add_argument(
            "--only-missing",
            action="store_true",
            help="Only subjects the version has not predicted (nor is predicting).",
        )
        parser.add_argument("--wait", action="store_true")

    def handle(self, *args, **opts):
        versions = ModelVersion.objects.filter(task=opts["task"], variant=opts["variant"])
        version = (
            versions.filter(number=opts["number"]).first()
            if opts["number"]
            else versions.filter(is_promoted=True).first()
        )
        if version is None:
            raise CommandError(
                f"no {'version ' + str(opts['number']) if opts['number'] else 'promoted version'} of {opts['task']}/{opts['variant'] or '-'}"
            )
        try:
            if opts["survey"]:
                survey = Survey.objects.filter(name=opts["survey"]).first()
                if survey is None:
                    raise CommandError(f"no survey {opts['survey']!r}")
                run = prediction_run_start(
                    version=version, survey=survey, force=opts["force"], only_missing=opts["only_missing"]
                )
                runs = [run] if run is not None else []
            else:
                runs = prediction_runs_for_version(version=version, only_missing=opts["only_missing"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        n_chunks = sum(r.n_chunks for r in runs)
        self.stdout.write(f"{version}: {sum(r.n_subjects for r in runs)} subjects in {n_chunks} chunks queued")
        if not opts["wait"]:
            return
        progress = TqdmProgress(enabled=opts["verbosity"] > 0, unit="chunk")
        progress.stage("prediction chunks", n_chunks)
        chunks = PredictionChunk.objects.filter(run__in=runs)
        finished = [PredictionChunk.Status.DONE, PredictionChunk.Status.FAILED]
        done = 0
        try:
            while done < n_chunks:
                now = chunks.filter(status__in=finished).count()
                progress.advance(now - done)
                done = now
                time.sleep(0.5)
        finally:
            progress.close()
        failed = list(chunks.filter(status=PredictionChunk.Status.FAILED))
        if failed:
            raise CommandError(
                f"{version}: {len(failed)} of {n_chunks} chunks failed for good, e.g. chunk {failed[0].pk}: {failed[0].error}"
            )
        self.stdout.write(self.style.SUCCESS(f"{version}: predictions complete"))
