"""python manage.py evaluate dla --truth TRUTH.csv [--version N] [--z-qso LO HI] [--json]"""

import json

from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from mlworker.dla_catalog import dla_evaluate, dla_version, truth_read

ROWS = (
    ("completeness as absorber (log N >= 20.0)", "completeness_absorber", "{:.3f}"),
    ("completeness as DLA (log N >= 20.3)", "completeness_dla", "{:.3f}"),
    ("predicted DLAs matching no true absorber", "false_dla_fraction", "{:.3f}"),
    ("sigma(z)", "sigma_z", "{:.4f}"),
    ("sigma(log N)", "sigma_log_nhi", "{:.3f}"),
)


class Command(BaseCommand):
    help = (
        "Matches a model version's DLA catalog against a truth table (same sightline, |dz| < 0.015) and prints "
        "completeness, false DLAs, sigma(z) and sigma(log N), overall, by S/N and by z_qso, with bootstrap 95% intervals."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("task", choices=["dla"])
        parser.add_argument("--truth", required=True, help="Truth table: plate, mjd, fiber, z_abs, log_nhi.")
        parser.add_argument("--version", type=int, help="Version number (default: the promoted one).")
        parser.add_argument("--variant", default="mock")
        parser.add_argument(
            "--z-qso",
            nargs=2,
            type=float,
            metavar=("LO", "HI"),
            help="Only the sightlines with LO <= z_qso < HI (a survey's quasar redshift range).",
        )
        parser.add_argument("--json", action="store_true", help="Print the whole report as JSON.")

    def handle(self, *args, **opts):
        try:
            version = dla_version(number=opts["version"], variant=opts["variant"])
            z_range = tuple(opts["z_qso"]) if opts["z_qso"] else None
            report = dla_evaluate(version=version, truth=truth_read(opts["truth"]), z_qso_range=z_range)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if opts["json"]:
            self.stdout.write(json.dumps(report, indent=1))
            return
        self.stdout.write(
            f"{version}: {report['n_sightlines']} sightlines scanned"
            + (f" with {z_range[0]:g} <= z_qso < {z_range[1]:g}" if z_range else "")
            + f", {report['n_truth_absorbers']} true and {report['n_predicted_absorbers']} predicted absorbers"
        )
        self._table(report, [k for k in report if k == "overall" or k.startswith("snr ")])
        self.stdout.write("")
        self._table(report["by_z_qso"], list(report["by_z_qso"]))
        self.stdout.write("")
        self.stdout.write(
            "By log N(HI): completeness by the true column, false DLAs by the predicted one "
            "(the scatter in log N moves absorbers across 20.3 both ways)"
        )
        self._table(report["by_log_nhi"], list(report["by_log_nhi"]), ROWS[:3], width=22)

    def _table(self, report: dict, bins: list[str], rows=ROWS, width: int = 26) -> None:
        header = f"{'':<44}" + "".join(f"{b:>{width}}" for b in bins)
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for label, key, fmt in rows:
            cells = []
            for b in bins:
                value, (lo, hi) = report[b][key], report[b][f"{key}_ci"]
                text = "-" if value is None else fmt.format(value)
                if lo is not None and hi is not None:
                    text += f" [{fmt.format(lo)},{fmt.format(hi)}]"
                cells.append(f"{text:>{width}}")
            self.stdout.write(f"{label:<44}" + "".join(cells))
        for label, key in (("true DLAs", "n_true_dla"), ("predicted DLAs", "n_predicted_dla")):
            counts = "".join(f"{report[b][key]:>{width}}" for b in bins)
            self.stdout.write(f"{label:<44}{counts}")
