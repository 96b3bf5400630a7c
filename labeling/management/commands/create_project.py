"""python manage.py create_project SLUG --scheme candels --survey NAME [--mag-max 24.5]"""

from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from catalog.models import Survey
from labeling.models import Project
from labeling.services import project_create


class Command(BaseCommand):
    help = "Create a labeling project: a scheme applied to a survey's galaxies (filtered by magnitude)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name")
        parser.add_argument("--scheme", required=True)
        parser.add_argument("--survey", required=True)
        parser.add_argument("--mag-min", type=float)
        parser.add_argument("--mag-max", type=float)
        parser.add_argument("--strategy", default="random", choices=Project.Strategy.values)
        parser.add_argument("--retire-after", type=int)
        parser.add_argument("--gold-rate", type=float, default=0.0)
        parser.add_argument(
            "--consensus", type=float, help="Retire early at this fraction of one first-question answer."
        )

    def handle(self, *args, **opts):
        survey = Survey.objects.filter(name=opts["survey"]).first()
        if survey is None:
            raise CommandError(f"no survey {opts['survey']!r}")
        try:
            project = project_create(
                slug=opts["slug"],
                name=opts["name"] or opts["slug"],
                scheme_slug=opts["scheme"],
                survey=survey,
                mag_min=opts["mag_min"],
                mag_max=opts["mag_max"],
                strategy=opts["strategy"],
                retire_after=opts["retire_after"],
                gold_rate=opts["gold_rate"],
                consensus_fraction=opts["consensus"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"project {project.slug}: {project.subjects.count()} galaxies, retire after {project.retire_after}"
            )
        )
