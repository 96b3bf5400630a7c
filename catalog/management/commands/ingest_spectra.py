"""python manage.py ingest_spectra PATH... [--survey NAME]"""

from pathlib import Path

from django.core.management.base import BaseCommand

from catalog.management.commands._common import run_service
from catalog.progress import TqdmProgress
from catalog.services.spectra import quasar_spectra_ingest


class Command(BaseCommand):
    help = (
        "Ingest SDSS spec-lite FITS files (files or directories, searched recursively) into a "
        "spectroscopic survey. Spectra not on the SDSS log-lambda grid are resampled onto it. "
        "Atomic and re-runnable."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--survey", default="sdss", help="Spectroscopic survey name (created if new).")
        parser.add_argument("--title", default="", help="Survey title (new surveys).")
        parser.add_argument("--workers", type=int, default=None, help="Parsing processes (default: all cores).")

    def handle(self, *args, **opts):
        report = run_service(
            lambda: quasar_spectra_ingest(
                survey_name=opts["survey"],
                survey_title=opts["title"],
                paths=opts["paths"],
                workers=opts["workers"],
                progress=TqdmProgress(enabled=opts["verbosity"] > 0, unit="spec"),
            )
        )
        self.stdout.write(self.style.SUCCESS(report.summary()))
