"""python manage.py export_fractions --scheme candels [--survey NAME] [--format csv|fits|votable] [-o FILE]"""

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Survey
from labeling.exports import fractions_table
from labeling.management.commands._common import scheme_version_from
from labeling.management.commands._export import add_output_arguments, export


class Command(BaseCommand):
    help = "Export vote counts and fractions (and weighted fractions) per galaxy, streaming in constant memory."

    def add_arguments(self, parser):
        parser.add_argument("--scheme", required=True)
        parser.add_argument("--scheme-version", type=int, help="Scheme version number (default: the current one).")
        parser.add_argument("--survey")
        add_output_arguments(parser)

    def handle(self, *args, **opts):
        version = scheme_version_from(opts["scheme"], opts["scheme_version"])
        survey = None
        if opts["survey"]:
            survey = Survey.objects.filter(name=opts["survey"]).first()
            if survey is None:
                raise CommandError(f"no survey {opts['survey']!r}")
        export(lambda: fractions_table(scheme_version=version, survey=survey), opts, self.stdout)
