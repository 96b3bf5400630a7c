"""python manage.py fit_sersic [--survey NAME] [--band F160W] [--set KEY=VALUE] [--refit] [--wait]"""

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from mlworker.management.commands.train import parse_overrides
from mlworker.registry import SERSIC_FIT_VARIANT
from mlworker.services.structure import sersic_fit_version_ensure


class Command(BaseCommand):
    help = (
        "Fit a single Sersic profile (astropy Sersic2D on an oversampled grid, convolved with the PSF) to every "
        "cutout or mock image of a survey in a band, on the workers, stored as its own versioned result set "
        "(emulator/sersic-fit). A new method version first checks itself on bright mocks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--survey", help="Survey to fit (default: every survey with the band).")
        parser.add_argument("--band", default="F160W")
        parser.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="Method setting: oversample, centre_oversample, centre_box_px, max_iterations, subtract_border_sky.",
        )
        parser.add_argument("--refit", action="store_true", help="Fit again what this method version already fitted.")
        parser.add_argument("--wait", action="store_true", help="Wait for every chunk, with a progress bar.")

    def handle(self, *args, **opts):
        try:
            version, created = sersic_fit_version_ensure(band=opts["band"], overrides=parse_overrides(opts["set"]))
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if created:
            m = version.metrics
            self.stdout.write(
                f"{version}: new method version; on {m['n_checked']} bright mocks median |dn|/n = "
                f"{m['median_rel_dn_bright']:.1%}, {m['failures']} failures, {m['seconds_per_fit']:.3f} s per fit"
            )
        call_command(
            "predict",
            "emulator",
            variant=SERSIC_FIT_VARIANT,
            number=version.number,
            survey=opts["survey"],
            only_missing=not opts["refit"],
            wait=opts["wait"],
            verbosity=opts["verbosity"],
            stdout=self.stdout._out,
            stderr=self.stderr._out,
        )
