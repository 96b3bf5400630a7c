"""Phenomena from images: does the model that sees only mock images beat one that knows only
the redshift?

    python bench/phenomena.py [--runs 10] [--cameras 20] [--check]

Makes --runs mock simulation runs (fixed seed), ingests them, trains the default phenomena
configuration through the platform (runs with id % 5 == 0 held out: 2 of 10), and prints
JSON: per image and per snapshot (probabilities averaged over the cameras), the accuracy and
ROC AUCs of the compaction phase and of a recent merger, for the model and for the
redshift-only baseline, on the held-out runs. Target: the model beats the baseline.
"""

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from _setup import ROOT, WORK, commit, setup

SURVEY = "bench-phenomena"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--check", action="store_true", help="Exit 1 if the model does not beat the baseline.")
    args = parser.parse_args()
    setup(default_db="postgres://postgres@127.0.0.1:5432/galaxylab_bench_phenomena")

    from django.core.management import call_command

    from catalog.models import ModelVersion, Survey
    from mlworker.models import TrainingRun
    from mlworker.services.training import training_execute
    from mlworker.synthetic.simulation import write_simulation_mock

    started = time.perf_counter()
    Survey.objects.filter(name=SURVEY).delete()
    ModelVersion.objects.filter(task="phenomena").delete()
    TrainingRun.objects.filter(task="phenomena").delete()
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        write_simulation_mock(Path(tmp), args.runs, args.seed, n_cameras=args.cameras, workers=2)
        for run_dir in sorted(p for p in Path(tmp).iterdir() if p.is_dir()):
            call_command("ingest_simulation", str(run_dir), survey=SURVEY, stdout=io.StringIO())
    mock_s = time.perf_counter() - started
    run = TrainingRun.objects.create(task="phenomena", variant="runs", trigger=TrainingRun.Trigger.CLI, config={})
    training_execute(run_id=run.pk, worker="bench")
    run.refresh_from_db()
    if run.status != TrainingRun.Status.SUCCEEDED:
        raise SystemExit(f"training failed: {run.error}")
    m = run.model_version.metrics
    model, baseline = m["model"], m["redshift_baseline"]
    checks = {
        "phase_auc_beats_redshift": model["per_image"]["phase_auc_macro"] > baseline["per_image"]["phase_auc_macro"],
        "phase_accuracy_beats_redshift": model["per_image"]["phase_accuracy"] > baseline["per_image"]["phase_accuracy"],
        "merger_auc_beats_redshift": model["per_image"]["merger_auc"] > baseline["per_image"]["merger_auc"],
    }
    report = {
        "commit": commit(),
        "version": str(run.model_version),
        "runs": args.runs,
        "cameras": args.cameras,
        "train_runs": m["n_train_runs"],
        "held_out_runs": m["test_runs"],
        "held_out_images": m["n_test_images"],
        "model": model,
        "redshift_baseline": baseline,
        "seconds": {
            "mocks_and_ingest": round(mock_s, 1),
            "training": m["train_seconds"],
            "all": round(time.perf_counter() - started, 1),
        },
        "checks": checks,
        "passed": all(checks.values()),
    }
    print(json.dumps(report, indent=1))
    if args.check and not report["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
