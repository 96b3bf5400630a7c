"""The prediction platform's own cost per subject: fan-out, queueing, claiming, bulk writes.

    python bench/predict_platform.py [--workers 1] [--concurrency 2] [--chunk 1000]

Runs a prediction of a trivial model (constant output, no pixels read; bench/_trivial_worker.py)
over the 100,000 galaxies of the bench-voting survey (made by bench/voting.py) with real
Celery workers on Redis and PostgreSQL, and prints the wall time per subject from the start
of the run to the moment every chunk is in. Target: <= 0.2 ms per subject on 2 cores.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from _setup import ROOT, WORK, commit, setup

BROKER = "redis://127.0.0.1:6379/14"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=1000)
    args = parser.parse_args()
    os.environ["CELERY_BROKER_URL"] = BROKER
    os.environ["GALAXYLAB_PREDICTION_CHUNK"] = str(args.chunk)
    url = setup(default_db="postgres://postgres@127.0.0.1:5432/galaxylab_bench_voting")

    import redis
    from django.conf import settings

    from catalog.models import Band, ModelVersion, Survey
    from mlworker.models import PredictionChunk, PredictionRun
    from mlworker.services.predictions import prediction_run_start

    survey = Survey.objects.filter(name="bench-voting").first()
    if survey is None:
        raise SystemExit("run bench/voting.py first: it makes the 100,000-galaxy bench-voting survey")
    band = Band.objects.get(survey=survey)
    ModelVersion.objects.filter(task="morphology", variant="bench-trivial").delete()
    version = ModelVersion.objects.create(
        task="morphology",
        variant="bench-trivial",
        number=1,
        status=ModelVersion.Status.READY,
        primary_metric="rmse",
        band=band.name,
        pixel_scale_arcsec=band.pixel_scale_arcsec,
        psf_fwhm_arcsec=band.psf_fwhm_arcsec,
    )
    redis.Redis.from_url(BROKER).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(WORK / "beat"),
    }
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "_trivial_worker.py"),
                "-A",
                "config",
                "worker",
                "-Q",
                "default,gpu",
                "-c",
                str(args.concurrency),
                "-n",
                f"bench{i}@%h",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
        )
        for i in range(args.workers)
    ]
    try:
        time.sleep(8)  # workers up (import torch, connect)
        started = time.perf_counter()
        run = prediction_run_start(version=version, survey=survey)
        fanned_out = time.perf_counter()
        while PredictionRun.objects.get(pk=run.pk).status == PredictionRun.Status.RUNNING:
            time.sleep(0.05)
        finished = time.perf_counter()
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=60)
    n = run.n_subjects
    total = finished - started
    results = {
        "commit": commit(),
        "subjects": n,
        "chunks": run.n_chunks,
        "chunk_size": settings.GALAXYLAB_PREDICTION_CHUNK,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "fan_out_s": round(fanned_out - started, 3),
        "total_s": round(total, 2),
        "ms_per_subject": round(1000 * total / n, 4),
        "attempts_per_chunk": round(
            sum(PredictionChunk.objects.filter(run=run).values_list("attempts", flat=True)) / run.n_chunks, 2
        ),
        "predictions_written": version.predictions.count(),
        "target_met": 1000 * total / n <= 0.2,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
