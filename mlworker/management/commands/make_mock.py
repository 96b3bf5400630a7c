"""python manage.py make_mock galaxies|spectra|simulation|lightcone OUTDIR --n N --seed S"""

import os
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from catalog.progress import TqdmProgress


class Command(BaseCommand):
    help = (
        "Write mock data in the formats the ingest commands read, with a truth table: "
        "galaxies (catalog + GalSim F160W cutouts), spectra (SDSS spec-lite quasar sightlines), "
        "simulation (VELA-like runs: snapshots, mergers, mock images from ~20 cameras), "
        "lightcone (a clustered catalog with photometric and some spectroscopic redshifts, and its true environment)."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["galaxies", "spectra", "simulation", "lightcone"])
        parser.add_argument("outdir", type=Path)
        parser.add_argument("--n", type=int, default=500, help="Galaxies or sightlines to make.")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--runs", type=int, default=3, help="simulation: number of runs.")
        parser.add_argument("--cameras", type=int, default=20, help="simulation: cameras per snapshot.")
        parser.add_argument("--no-cutouts", action="store_true", help="galaxies: catalog and truth only.")
        parser.add_argument(
            "--field-width", type=float, default=0.24, help="galaxies: width of the square sky patch, degrees."
        )
        parser.add_argument("--format", default="csv", choices=["csv", "fits", "vot"], help="galaxies: catalog format.")
        parser.add_argument(
            "--dla-boost",
            type=float,
            default=1.0,
            help="spectra: multiply the DLA incidence (recorded per sightline in the truth).",
        )
        parser.add_argument(
            "--side-deg", type=float, default=4.0, help="lightcone: side of the square sky patch, degrees."
        )
        parser.add_argument("--z-min", type=float, default=0.4, help="lightcone: nearest redshift.")
        parser.add_argument("--z-max", type=float, default=1.2, help="lightcone: farthest redshift.")
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Processes for rendering.")

    def handle(self, *args, **opts):
        if opts["n"] < 1:
            raise CommandError("--n must be at least 1")
        progress = TqdmProgress(enabled=opts["verbosity"] > 0, unit="obj")
        outdir = opts["outdir"]
        kind = opts["kind"]
        try:
            if kind == "galaxies":
                from mlworker.synthetic.galaxies import GalaxyMockConfig, write_galaxy_mock

                if not 0 < opts["field_width"] <= 60:
                    raise CommandError("--field-width must be in (0, 60] degrees")

                progress.stage("rendering galaxies", 0 if opts["no_cutouts"] else opts["n"])
                write_galaxy_mock(
                    outdir,
                    opts["n"],
                    opts["seed"],
                    cutouts=not opts["no_cutouts"],
                    fmt=opts["format"],
                    workers=opts["workers"],
                    on_progress=progress.advance,
                    cfg=GalaxyMockConfig(field_half_width_deg=opts["field_width"] / 2),
                )
            elif kind == "spectra":
                from mlworker.synthetic.spectra import write_spectra_mock

                progress.stage("simulating sightlines", opts["n"])
                write_spectra_mock(
                    outdir,
                    opts["n"],
                    opts["seed"],
                    dla_boost=opts["dla_boost"],
                    workers=opts["workers"],
                    on_progress=progress.advance,
                )
            elif kind == "lightcone":
                from mlworker.synthetic.lightcone import LightconeConfig, write_lightcone

                if not 0 < opts["side_deg"] <= 20 or not 0 < opts["z_min"] < opts["z_max"] <= 3:
                    raise CommandError("--side-deg must be in (0, 20] and 0 < --z-min < --z-max <= 3")
                progress.stage("drawing the light cone", 1)
                lc = write_lightcone(
                    outdir,
                    LightconeConfig(
                        n_galaxies=opts["n"], side_deg=opts["side_deg"], z_min=opts["z_min"], z_max=opts["z_max"]
                    ),
                    opts["seed"],
                )
                progress.advance(1)
                self.stdout.write(f"{len(lc)} galaxies, {int(np.isfinite(lc.z_spec).sum())} with spectra")
            else:
                from mlworker.synthetic.simulation import write_simulation_mock

                progress.stage("rendering runs", opts["runs"])
                write_simulation_mock(
                    outdir,
                    opts["runs"],
                    opts["seed"],
                    n_cameras=opts["cameras"],
                    workers=opts["workers"],
                    on_progress=progress.advance,
                )
        finally:
            progress.close()
        self.stdout.write(self.style.SUCCESS(f"wrote mock {kind} to {outdir}"))
