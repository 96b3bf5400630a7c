"""python manage.py compare morphology|emulator|environment [--variant candels] [--version N] [--json]"""

import json

from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from mlworker.comparison import BASELINE_LABELS, comparison, morphology_version


class Command(BaseCommand):
    help = (
        "How a model version compares with the humans on held-out galaxies: per answer of the main question, "
        "bias, scatter and RMSE with bootstrap 95% intervals, for the model and its baselines; by magnitude; "
        "class agreement under the CANDELS thresholds."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version is the model version; Django's own --version (of Django) gives way.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("task", choices=["morphology", "emulator", "environment"])
        parser.add_argument("--variant", default="candels", help="The scheme (default candels).")
        parser.add_argument("--version", type=int, help="Version number (default: the promoted one).")
        parser.add_argument("--bootstrap", type=int, default=1000, help="Bootstrap resamples (default 1000).")
        parser.add_argument("--json", action="store_true", help="Print the whole report as JSON.")

    def handle(self, *args, **opts):
        if opts["task"] == "emulator":
            return self.emulator(opts)
        if opts["task"] == "environment":
            return self.environment(opts)
        try:
            version = morphology_version(variant=opts["variant"], number=opts["version"])
            report = comparison(version, n_boot=opts["bootstrap"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if opts["json"]:
            self.stdout.write(json.dumps({"version": str(version), **report}, indent=1))
            return
        self.stdout.write(f"{version}: {report['n']} held-out galaxies (bias = mean(model - human))")
        header = f"{'model':<30} {'answer':<28} {'bias':>22} {'scatter':>22} {'rmse':>22}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))

        def cell(stats, name):
            lo, hi = stats.get(f"{name}_ci", [float("nan")] * 2)
            return f"{stats[name]:+.3f} [{lo:+.3f},{hi:+.3f}]"

        for source, by in report["by"].items():
            for answer, stats in by["fractions"].items():
                s = stats["all"]
                self.stdout.write(
                    f"{BASELINE_LABELS.get(source, source):<30} {answer:<28} "
                    f"{cell(s, 'bias'):>22} {cell(s, 'scatter'):>22} {cell(s, 'rmse'):>22}"
                )
        self.stdout.write("")
        self.stdout.write("bias of the model by magnitude:")
        model = report["by"]["model"]["fractions"]
        self.stdout.write(f"{'answer':<28} " + " ".join(f"{b:>14}" for b in report["mag_bins"]))
        for answer, stats in model.items():
            cells = []
            for b in report["mag_bins"]:
                s = stats["by_mag"].get(b)
                cells.append(f"{s['bias']:+.3f} (n={s['n']})" if s else "-")
            self.stdout.write(f"{answer:<28} " + " ".join(f"{c:>14}" for c in cells))
        self.stdout.write("")
        for source, by in report["by"].items():
            agreement = by["confusion"]["agreement"]
            self.stdout.write(
                f"class agreement with the humans ({BASELINE_LABELS.get(source, source)}): "
                + (f"{agreement:.3f}" if agreement is not None else "-")
            )

    def emulator(self, opts) -> None:
        from mlworker import emulator_comparison as ec

        try:
            version = ec.emulator_version(number=opts["version"])
            report = ec.report(version=version)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if opts["json"]:
            self.stdout.write(json.dumps({"version": str(version), **report}, indent=1, default=float))
            return
        speed = report["speed"]
        self.stdout.write(f"{version}: single-Sersic structure (r_e along the major axis, total magnitudes)")
        self.stdout.write(
            "speed per CPU core: emulator "
            + (f"{speed['emulator']:.1f}" if speed["emulator"] else "-")
            + " galaxies/s, reference fit "
            + (f"{speed['fit']:.2f}" if speed["fit"] else "-")
            + " galaxies/s"
            + (f" ({speed['ratio']:.0f}x)" if speed["ratio"] else "")
        )
        auc = report["held_out"]["kind_auc"]
        if auc:
            self.stdout.write(
                f"ROC AUC at H < {auc['max_mag']}: bulge {auc['bulge']:.3f}, disk {auc['disk']:.3f}, "
                f"bulge+disk {auc['bulge_disk']:.3f}"
            )
        sample = report["held_out"]["fitted_sample"]
        tables = [("emulator vs truth (held-out mocks)", report["held_out"]["emulator_vs_truth"])]
        if sample:
            tables += [
                (
                    f"reference fit vs truth ({sample['failures']} of {sample['n']} fits failed)",
                    sample["fitter_vs_truth"],
                ),
                ("emulator vs truth (same galaxies)", sample["emulator_vs_truth"]),
                ("emulator vs reference fit (same galaxies)", sample["emulator_vs_fitter"]),
            ]
        data = report["data"]
        if data and data.get("n"):
            tables.append((f"emulator vs reference fit on data ({data['n']} subjects)", data["emulator_vs_fit"]))
        elif report["fit_version"] is None:
            self.stdout.write("no reference fit on data yet (python manage.py fit_sersic)")
        header = (
            f"{'H':<8} {'n':>6} {'|dn|/n':>8} {'NMAD lgn':>9} {'|dlg re|':>9} {'NMAD lgre':>10} "
            f"{'|dmag|':>8} {'NMAD mag':>9} {'|dq|':>7} {'catastr.':>9}"
        )
        for title, table in tables:
            self.stdout.write("")
            self.stdout.write(title)
            self.stdout.write(header)
            for r in ec.table_rows(table):
                self.stdout.write(
                    f"{r['bin']:<8} {r['n']:>6} {r['n_rel']:>8.3f} {r['log_n_nmad']:>9.3f} {r['log_r_e']:>9.3f} "
                    f"{r['log_r_e_nmad']:>10.3f} {r['mag']:>8.3f} {r['mag_nmad']:>9.3f} {r['q']:>7.3f} {r['catastrophic']:>9.3f}"
                )

    def environment(self, opts) -> None:
        from mlworker import environment as env

        rows = env.comparison_rows(env.method_versions())
        if not rows:
            raise CommandError(
                "no environment method has been measured yet (manage.py environment --survey NAME, manage.py train environment)"
            )
        if opts["json"]:
            out = [{**{k: v for k, v in r.items() if k != "version"}, "version": str(r["version"])} for r in rows]
            self.stdout.write(json.dumps(out, indent=1))
            return
        self.stdout.write(
            f"environment methods on the held-out mock light cone ({rows[0]['n_test']} galaxies): "
            "Spearman with the true log delta_5, densest 10%, xi(s) against the truth's"
        )
        header = f"{'method':<22} {'version':<24} {'Spearman d5':>11} {'d10':>7} {'cyl':>7} {'compl.':>7} {'purity':>7} {'xi ratio':>9} {'2 sigma':>8}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))

        def cell(v, width, fmt=".3f"):
            return f"{v:>{width}{fmt}}" if isinstance(v, float) else f"{'-':>{width}}"

        for r in rows:
            sp = r["spearman_all"]
            self.stdout.write(
                f"{r['label']:<22} {str(r['version']):<24} {cell(r['spearman'], 11)} {cell(sp.get('log_delta10'), 7)} "
                f"{cell(sp.get('log_delta_cylinder'), 7)} {cell(r['completeness'], 7)} {cell(r['purity'], 7)} "
                f"{cell(r['xi_mean_ratio'], 9)} {('yes' if r['xi_within_2_sigma'] else 'no'):>8}"
            )
