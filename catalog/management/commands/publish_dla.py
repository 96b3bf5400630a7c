"""python manage.py publish_dla NAME [--version N] [--min-confidence C] [--description TEXT]"""

from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion
from catalog.services.dla import dla_release_publish


class Command(BaseCommand):
    help = (
        "Publishes the DLA catalog as a new frozen release (e.g. DR1) from the promoted DLA finder's "
        "predictions (or --version N): later retraining never changes a published release."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("name", help="Release name, e.g. DR1.")
        parser.add_argument("--version", type=int, help="DLA finder version number (default: the promoted one).")
        parser.add_argument("--variant", default="mock")
        parser.add_argument("--min-confidence", type=float, default=0.0)
        parser.add_argument("--description", default="")

    def handle(self, *args, **opts):
        version = None
        if opts["version"] is not None:
            version = ModelVersion.objects.filter(
                task=ModelTask.DLA, variant=opts["variant"], number=opts["version"]
            ).first()
            if version is None:
                raise CommandError(f"the DLA finder ({opts['variant']}) has no version {opts['version']}")
        try:
            release = dla_release_publish(
                name=opts["name"],
                version=version,
                description=opts["description"],
                min_confidence=opts["min_confidence"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"published {release.name}: {release.n_absorbers} absorbers on {release.n_sightlines} sightlines "
            f"from {release.model_version}"
        )
