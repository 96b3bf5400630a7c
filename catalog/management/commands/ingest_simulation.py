"""python manage.py ingest_simulation DIR [--survey NAME]"""

from pathlib import Path

from django.core.management.base import BaseCommand

from catalog.management.commands._common import run_service
from catalog.progress import TqdmProgress
from catalog.services.simulations import simulation_run_ingest


class Command(BaseCommand):
    help = (
        "Ingest one simulation run directory: run.json, snapshots table, mergers table and "
        "images/<run>_a<scale>_cam<NN>_<FILTER>[_snr<S>].fits (layout in the README). "
        "Atomic and re-runnable."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_dir", type=Path)
        parser.add_argument("--survey", default="simulations", help="Simulation survey name (created if new).")
        parser.add_argument("--title", default="", help="Survey title (new surveys).")

    def handle(self, *args, **opts):
        report = run_service(
            lambda: simulation_run_ingest(
                survey_name=opts["survey"],
                survey_title=opts["title"],
                run_dir=opts["run_dir"],
                progress=TqdmProgress(enabled=opts["verbosity"] > 0, unit="img"),
            )
        )
        self.stdout.write(self.style.SUCCESS(report.summary()))
