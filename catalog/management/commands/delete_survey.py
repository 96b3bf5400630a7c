"""python manage.py delete_survey NAME [--yes]"""

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Survey
from catalog.services.surveys import survey_delete


class Command(BaseCommand):
    help = "Delete a survey with everything hanging off it (galaxies, cutouts, spectra, runs, files, shards)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **opts):
        survey = Survey.objects.filter(name=opts["name"]).first()
        if survey is None:
            raise CommandError(f"no survey called {opts['name']!r}")
        if not opts["yes"]:
            answer = input(f"Delete survey {survey.name} and everything in it? Type its name to confirm: ")
            if answer.strip() != survey.name:
                raise CommandError("not confirmed; nothing deleted")
        report = survey_delete(survey=survey)
        rows = ", ".join(f"{n} {label.split('.')[-1]}" for label, n in report.rows.items() if n)
        self.stdout.write(self.style.SUCCESS(f"deleted survey {report.survey}: {rows}"))
