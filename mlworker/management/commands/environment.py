"""python manage.py environment --survey NAME [--method photoz|sort|learned|all] [--set KEY=VALUE] [--wait]"""

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion
from mlworker.management.commands.train import parse_overrides
from mlworker.registry import ENVIRONMENT_METHODS
from mlworker.services.environment import environment_method_version_ensure


class Command(BaseCommand):
    help = (
        "Measure the environment (local density) of a survey's galaxies on the workers, with photo-z slices, "
        "SORT, or the promoted learned estimator. A method's setting is a version: a new one is first measured "
        "on the held-out mock light cone (a minute or two)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--survey", required=True)
        parser.add_argument("--method", default="all", choices=[*ENVIRONMENT_METHODS, "learned", "all"])
        parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="SORT setting (e.g. cell_mpc=5).")
        parser.add_argument("--refit", action="store_true", help="Measure again what the version already measured.")
        parser.add_argument("--wait", action="store_true", help="Wait for every chunk, with a progress bar.")

    def handle(self, *args, **opts):
        methods = [*ENVIRONMENT_METHODS, "learned"] if opts["method"] == "all" else [opts["method"]]
        overrides = parse_overrides(opts["set"])
        if overrides and methods != ["sort"]:
            raise CommandError("--set takes SORT settings: use it with --method sort")
        for method in methods:
            if method == "learned":
                version = ModelVersion.objects.filter(
                    task=ModelTask.ENVIRONMENT, variant="learned", is_promoted=True
                ).first()
                if version is None:
                    if opts["method"] == "all":
                        self.stdout.write(
                            "no learned environment model yet (python manage.py train environment): skipped"
                        )
                        continue
                    raise CommandError(
                        "no promoted learned environment model: train one with manage.py train environment"
                    )
            else:
                try:
                    version, created = environment_method_version_ensure(method=method, overrides=overrides)
                except ApplicationError as exc:
                    raise CommandError(exc.message) from None
                if created:
                    m = version.metrics
                    self.stdout.write(
                        f"{version}: new method version; on the held-out light cone Spearman(log delta_5) = "
                        f"{m['spearman_log_delta5']:.3f}, mean xi(s) ratio over 4-30 Mpc/h = {m['xi_mean_ratio']:.3f}"
                    )
            call_command(
                "predict",
                "environment",
                variant=version.variant,
                number=version.number,
                survey=opts["survey"],
                only_missing=not opts["refit"],
                wait=opts["wait"],
                verbosity=opts["verbosity"],
                stdout=self.stdout._out,
                stderr=self.stderr._out,
            )
