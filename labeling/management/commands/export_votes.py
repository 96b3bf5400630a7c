"""python manage.py export_votes --scheme candels [--project SLUG] [--format csv|fits|votable] [-o FILE]"""

from django.core.management.base import BaseCommand

from labeling.exports import votes_table
from labeling.management.commands._common import project_from, scheme_version_from
from labeling.management.commands._export import add_output_arguments, export


class Command(BaseCommand):
    help = "Export every vote (one row each, one true/false column per answer), streaming in constant memory."

    def add_arguments(self, parser):
        parser.add_argument("--scheme", required=True)
        parser.add_argument("--scheme-version", type=int, help="Scheme version number (default: the current one).")
        parser.add_argument("--project")
        add_output_arguments(parser)

    def handle(self, *args, **opts):
        version = scheme_version_from(opts["scheme"], opts["scheme_version"])
        project = project_from(opts["project"])
        export(lambda: votes_table(scheme_version=version, project=project), opts, self.stdout)
