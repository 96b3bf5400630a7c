"""python manage.py weight_classifiers --scheme gz2"""

from django.core.management.base import BaseCommand

from labeling.management.commands._common import scheme_version_from
from labeling.services import classifier_weights_compute


class Command(BaseCommand):
    help = "Compute Galaxy Zoo 2 consistency weights of classifiers and the weighted fractions (stored apart)."

    def add_arguments(self, parser):
        parser.add_argument("--scheme", required=True)
        parser.add_argument("--scheme-version", type=int, help="Scheme version number (default: the current one).")

    def handle(self, *args, **opts):
        version = scheme_version_from(opts["scheme"], opts["scheme_version"])
        report = classifier_weights_compute(scheme_version=version)
        self.stdout.write(
            f"{version}: {report.classifiers} classifiers ({report.down_weighted} down-weighted), {report.galaxies} galaxies"
        )
