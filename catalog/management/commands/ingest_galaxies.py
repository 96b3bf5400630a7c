"""python manage.py ingest_galaxies CATALOG --survey NAME [--cutouts DIR]"""

from pathlib import Path

from django.core.management.base import BaseCommand

from catalog.management.commands._common import parse_mapping, run_service
from catalog.progress import TqdmProgress
from catalog.services.galaxies import galaxy_catalog_ingest
from catalog.services.surveys import BandFacts


class Command(BaseCommand):
    help = (
        "Ingest a galaxy catalog (CSV, ECSV, FITS table or VOTable) into an imaging survey, "
        "optionally with FITS cutouts named by source id. Atomic and re-runnable."
    )

    def add_arguments(self, parser):
        parser.add_argument("catalog", type=Path)
        parser.add_argument("--survey", required=True, help="Survey name (created if new).")
        parser.add_argument("--cutouts", type=Path, help="Directory of <source_id>[_<BAND>].fits cutouts.")
        parser.add_argument(
            "--map",
            action="append",
            metavar="FIELD=COLUMN",
            help="Read FIELD (source_id, ra, dec, mag, mag_err, z_spec, z_spec_err, z_phot, z_phot_err, "
            "log_stellar_mass) from COLUMN. Repeatable.",
        )
        parser.add_argument("--keep-columns", help="Comma-separated extra columns stored with each galaxy.")
        parser.add_argument("--band", help="Detection band of the catalog's magnitudes (e.g. F160W).")
        parser.add_argument("--pixel-scale", type=float, help="Band pixel scale, arcsec/pixel.")
        parser.add_argument("--psf-fwhm", type=float, help="Band PSF FWHM, arcsec.")
        parser.add_argument("--zero-point", type=float, help="Band AB zero point.")
        parser.add_argument("--title", default="", help="Survey title (new surveys).")
        parser.add_argument("--field", default="", help="Sky field name, e.g. GOODS-S (new surveys).")
        parser.add_argument("--instrument", default="", help="Instrument, e.g. HST/WFC3-IR (new surveys).")

    def handle(self, *args, **opts):
        band = None
        if opts["band"]:
            band = BandFacts(
                name=opts["band"],
                pixel_scale_arcsec=opts["pixel_scale"],
                psf_fwhm_arcsec=opts["psf_fwhm"],
                zero_point_ab=opts["zero_point"],
                instrument=opts["instrument"],
            )
        keep = [c.strip() for c in opts["keep_columns"].split(",")] if opts["keep_columns"] else None
        report = run_service(
            lambda: galaxy_catalog_ingest(
                survey_name=opts["survey"],
                catalog_path=opts["catalog"],
                cutout_dir=opts["cutouts"],
                mapping=parse_mapping(opts["map"]),
                keep_columns=keep,
                band=band,
                survey_title=opts["title"],
                field_name=opts["field"],
                instrument=opts["instrument"],
                progress=TqdmProgress(enabled=opts["verbosity"] > 0, unit="row"),
            )
        )
        for notice in report.notices:
            self.stderr.write(f"note: {notice}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
