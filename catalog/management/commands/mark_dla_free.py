"""python manage.py mark_dla_free SURVEY [--table SIGHTLINES.csv]"""

from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from catalog.services.dla import spectra_mark_dla_free


class Command(BaseCommand):
    help = (
        "Marks a spectroscopic survey's sightlines (all, or those listed in a table with plate, mjd, fiber) as free "
        "of DLAs: the DLA finder then also trains on them with Voigt-profile DLAs inserted."
    )

    def add_arguments(self, parser):
        parser.add_argument("survey")
        parser.add_argument(
            "--table", help="CSV/FITS/VOTable with plate, mjd, fiber columns (default: every sightline)."
        )

    def handle(self, *args, **opts):
        sightlines = None
        try:
            if opts["table"]:
                from catalog.ingest.tables import read_sightline_table

                sightlines = read_sightline_table(opts["table"], what="sightline table")
            n = spectra_mark_dla_free(survey_name=opts["survey"], sightlines=sightlines)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{n} sightlines of {opts['survey']} marked free of DLAs")
