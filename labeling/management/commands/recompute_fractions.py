"""python manage.py recompute_fractions [--scheme candels] [--version N]"""

from django.core.management.base import BaseCommand

from labeling.management.commands._common import scheme_version_from
from labeling.models import Project, SchemeVersion
from labeling.services import fractions_recompute, subjects_recount


class Command(BaseCommand):
    help = "Rebuild vote totals, answer counts, fractions and subjects' vote totals from the votes themselves."

    def add_arguments(self, parser):
        parser.add_argument("--scheme", help="Only this scheme (default: every version that has votes).")
        parser.add_argument("--scheme-version", type=int, help="Scheme version number (default: the current one).")

    def handle(self, *args, **opts):
        if opts["scheme"]:
            versions = [scheme_version_from(opts["scheme"], opts["scheme_version"])]
        else:
            versions = list(SchemeVersion.objects.filter(votes__isnull=False).distinct())
        for version in versions:
            report = fractions_recompute(scheme_version=version)
            for project in Project.objects.filter(scheme_version=version):
                subjects_recount(project=project)
            self.stdout.write(
                f"{report.scheme_version}: {report.galaxies} galaxies, {report.answer_counts} answer counts rebuilt"
            )
