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


# Smaller than the defaults, so that the quick start's worker has them within minutes.
DEMO_EMULATOR = {"train_galaxies": 6000, "test_galaxies": 500, "epochs": 8, "fitter_sample": 40}
DEMO_PHENOMENA = {"epochs": 10, "held_out_modulus": 3, "min_train_runs": 2, "min_test_runs": 1}


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
        self._labeling(root / "galaxies", g["survey"], verbosity)
        self.stdout.write(self.style.SUCCESS("demo data in place"))

    def _labeling(self, galaxies_dir: Path, survey_name: str, verbosity: int) -> None:
        """Two labeling projects on the demo galaxies, part-voted by the simulated crowd: some
        galaxies retired, the rest waiting for a human; a few gold-standard checks."""
        from labeling.models import Project
        from labeling.services import gold_label_set, project_create

        survey = Survey.objects.get(name=survey_name)
        truth = galaxies_dir / "truth.csv"
        if not Project.objects.filter(slug="demo-candels").exists():
            project = project_create(
                slug="demo-candels",
                name="Demo: CANDELS visual morphology",
                scheme_slug="candels",
                survey=survey,
                gold_rate=0.05,
            )
            call_command(
                "simulate_votes",
                project=project.slug,
                truth=str(truth),
                classifiers=65,
                per_galaxy=5,
                limit=500,
                expected_out=str(galaxies_dir / "expected_fractions.csv"),
                verbosity=verbosity,
            )
            from astropy.table import Table

            table = Table.read(truth, format="ascii.csv")
            main = {
                "spheroid": "spheroid",
                "disk": "disk",
                "bulge_disk": "disk",
                "irregular": "irregular",
                "merger": "irregular",
                "compact": "compact",
                "unclassifiable": "unclassifiable",
            }
            unvoted = set(project.subjects.filter(n_votes=0).values_list("galaxy__source_id", flat=True))
            for row in [r for r in table if r["source_id"] in unvoted][:20]:
                answers = [f"main_class:{main[row['true_class']]}"] + (
                    ["main_class:spheroid"] if row["true_class"] == "bulge_disk" else []
                )
                answers.append("interaction:merger" if row["true_class"] == "merger" else "interaction:none")
                gold_label_set(
                    galaxy_id=project.subjects.get(galaxy__source_id=row["source_id"]).galaxy_id,
                    scheme_version=project.scheme_version,
                    answers=answers,
                    note="demo: from the mock truth",
                )
        if not Project.objects.filter(slug="demo-gz2").exists():
            project = project_create(slug="demo-gz2", name="Demo: Galaxy Zoo 2 tree", scheme_slug="gz2", survey=survey)
            call_command(
                "simulate_votes",
                project=project.slug,
                truth=str(truth),
                classifiers=65,
                per_galaxy=20,
                limit=200,
                verbosity=verbosity,
            )
        for scheme in ("candels", "gz2"):
            call_command("weight_classifiers", scheme=scheme, verbosity=verbosity)
        self._train()

    def _train(self) -> None:
        """The demo's models train on the worker in the background, one after the other
        (progress at /ml/runs/): morphology on the votes, the GALFIT emulator on GalSim mocks,
        the phenomena model on the three demo runs (two train, one held out: a demonstration,
        below the eight + two runs a real model needs). The reference Sersic fit over the demo
        galaxies is left to ``fit_sersic`` (printed), so that nothing long queues ahead of the
        morphology model's predictions on the demo's single worker."""
        from catalog.models import ModelVersion
        from mlworker.models import TrainingRun
        from mlworker.services.training import training_start

        demo_models = (
            ("morphology", "candels", {}),
            ("emulator", "mock", DEMO_EMULATOR),
            ("phenomena", "runs", DEMO_PHENOMENA),
        )
        for task, variant, config in demo_models:
            if (
                ModelVersion.objects.filter(task=task, variant=variant).exists()
                or TrainingRun.objects.filter(task=task, variant=variant).exists()
            ):
                continue
            run = training_start(task=task, variant=variant, trigger=TrainingRun.Trigger.CLI, config=config)
            self.stdout.write(
                f"training run #{run.pk} ({task}/{variant}) queued: the worker trains it in the background, "
                f"see /ml/runs/{run.pk}/"
            )
        # The reference Sersic fit (~0.5 s per demo galaxy) is not queued here: on the demo's one
        # worker it would hold back the morphology model's predictions for minutes.
        self.stdout.write(
            f"for the emulator's comparison on data, fit the demo galaxies with the reference fit: "
            f"python manage.py fit_sersic --survey {DEMO['galaxies']['survey']}"
        )

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
