"""python manage.py demo_setup: an admin login and a demo dataset made with the mocks.

Idempotent: a second run finds everything in place and changes nothing.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from catalog.models import Survey

DEMO = {
    "galaxies": {"survey": "demo-goodss", "n": 800, "seed": 11},
    "spectra": {"survey": "demo-sdss", "n": 300, "seed": 12},
    "simulation": {"survey": "demo-vela", "runs": 3, "seed": 13},
}


class Command(BaseCommand):
    help = "Create an admin login (printed once) and ingest a demo dataset made with the mock generators."

    def add_arguments(self, parser):
        parser.add_argument("--galaxies", type=int, default=DEMO["galaxies"]["n"])
        parser.add_argument("--spectra", type=int, default=DEMO["spectra"]["n"])
        parser.add_argument("--runs", type=int, default=DEMO["simulation"]["runs"])
        parser.add_argument("--no-admin", action="store_true")

    def handle(self, *args, **opts):
        if not opts["no_admin"]:
            self._admin()
        root = Path(settings.VAR_DIR if hasattr(settings, "VAR_DIR") else settings.BASE_DIR / "var") / "demo"
        verbosity = opts["verbosity"]
        workers = str(os.cpu_count() or 1)
        g, s, sim = DEMO["galaxies"], DEMO["spectra"], DEMO["simulation"]
        if not Survey.objects.filter(name=g["survey"]).exists():
            out = root / "galaxies"
            call_command(
                "make_mock",
                "galaxies",
                str(out),
                n=opts["galaxies"],
                seed=g["seed"],
                workers=int(workers),
                verbosity=verbosity,
            )
            call_command(
                "ingest_galaxies",
                str(out / "catalog.csv"),
                survey=g["survey"],
                cutouts=str(out / "cutouts"),
                band="F160W",
                title="Demo: mock CANDELS GOODS-S (F160W)",
                field="GOODS-S",
                instrument="HST/WFC3-IR",
                verbosity=verbosity,
            )
        if not Survey.objects.filter(name=s["survey"]).exists():
            out = root / "spectra"
            call_command(
                "make_mock",
                "spectra",
                str(out),
                n=opts["spectra"],
                seed=s["seed"],
                dla_boost=3.0,
                workers=int(workers),
                verbosity=verbosity,
            )
            call_command(
                "ingest_spectra",
                str(out / "spectra"),
                survey=s["survey"],
                title="Demo: mock SDSS/BOSS quasar sightlines",
                verbosity=verbosity,
            )
        if not Survey.objects.filter(name=sim["survey"]).exists():
            out = root / "simulation"
            call_command(
                "make_mock",
                "simulation",
                str(out),
                runs=opts["runs"],
                seed=sim["seed"],
                workers=int(workers),
                verbosity=verbosity,
            )
            for run_dir in sorted(p for p in out.iterdir() if p.is_dir()):
                call_command(
                    "ingest_simulation",
                    str(run_dir),
                    survey=sim["survey"],
                    title="Demo: mock VELA-like zoom-in runs",
                    verbosity=verbosity,
                )
        self.stdout.write(self.style.SUCCESS("demo data in place"))

    def _admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username="admin", email="admin@localhost", password=password)
        bar = "=" * 64
        self.stdout.write(
            f"\n{bar}\n  galaxylab admin login (shown once):\n    username: admin\n    password: {password}\n"
            f"  change it with: python manage.py changepassword admin\n{bar}\n"
        )
