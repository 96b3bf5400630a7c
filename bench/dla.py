"""Speed of the DLA finder and the public DLA catalog, in one run.

    python bench/dla.py [--sightlines 300] [--absorbers 1000000] [--cones 200] [--skip-scan]

1. Scanning end to end through the prediction path (spectra read from the packed store,
   continuum and scan input, network, post-processing, bulk write to PostgreSQL), for the
   baseline (all 1,748 windows of a sightline through the network in chunks of 512) and for the
   one-pass scan; sightlines/s and their ratio. Target: >= 15 sightlines/s for the one-pass
   scan on this CPU. The model is a short training of the default network (speed does not
   depend on how well it is trained, beyond the post-processing of its peaks).
2. Cone-search latency over a release of --absorbers absorbers spread over the sky: p50/p95
   of the selector (query and rows) and of GET /api/dla/?ra=&dec=&radius= (JSON), for cones of
   0.1-3 degrees. Target: p95 < 50 ms at 1,000,000 absorbers.
3. CSV and VOTable export through GET /api/dla/?format=: rows/s and the peak of Python memory
   while streaming, at 10% and 100% of the release (flat memory: the same peak for both).
   Target: >= 50,000 rows/s.
"""

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _setup import WORK, commit, setup

SURVEY = "bench-dla-speed"


def scan_speed(n: int, quiet) -> dict:
    from django.conf import settings
    from django.core.management import call_command

    from catalog.models import ModelVersion, Prediction, Survey
    from mlworker.ml.device import pick_device
    from mlworker.models import PredictionChunk, PredictionRun, TrainingRun
    from mlworker.services import predictions as P
    from mlworker.services.training import training_execute
    from mlworker.synthetic.spectra import write_spectra_mock

    Survey.objects.filter(name=SURVEY).delete()
    TrainingRun.objects.filter(task="dla", variant="mock").delete()
    ModelVersion.objects.filter(task="dla", variant="mock").delete()
    config = {"train_sightlines": 300, "test_sightlines": 50, "epochs": 1, "windows_per_epoch": 20_000}
    run = TrainingRun.objects.create(task="dla", variant="mock", trigger=TrainingRun.Trigger.CLI, config=config)
    training_execute(run_id=run.pk, worker="bench")
    version = TrainingRun.objects.get(pk=run.pk).model_version
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        write_spectra_mock(Path(tmp), n, 77, workers=2)
        call_command("ingest_spectra", str(Path(tmp) / "spectra"), survey=SURVEY, workers=2, stdout=quiet)
    survey = Survey.objects.get(name=SURVEY)
    out = {}
    for mode in ("windowed", "one-pass"):
        settings.GALAXYLAB_DLA_SCAN = mode
        Prediction.objects.filter(model_version=version).delete()
        PredictionRun.objects.filter(model_version=version).delete()
        P._LOADED.clear()
        P.prediction_run_start(version=version, survey=survey)
        chunks = list(PredictionChunk.objects.filter(run__model_version=version).values_list("pk", flat=True))
        P._loaded_model(version, P.task_spec("dla"), pick_device())  # loading is not part of the rate
        t = time.perf_counter()
        for pk in chunks:
            P.prediction_chunk_execute(chunk_id=pk, worker="bench")
        seconds = time.perf_counter() - t
        assert Prediction.objects.filter(model_version=version).count() == n
        out[mode] = {"seconds": round(seconds, 2), "sightlines_per_s": round(n / seconds, 2)}
    settings.GALAXYLAB_DLA_SCAN = "one-pass"
    out["ratio"] = round(out["one-pass"]["sightlines_per_s"] / out["windowed"]["sightlines_per_s"], 2)
    out["target_met"] = out["one-pass"]["sightlines_per_s"] >= 15
    out["n_sightlines"] = n
    return out


def model_only(n: int, batch: int) -> dict:
    """The bare network on this machine's device (the GPU when present): sightlines/s for the
    windowed baseline and the one-pass scan, and their largest difference."""
    import torch

    from mlworker.ml.device import pick_device
    from mlworker.ml.dla import DLANet, scan, scan_input, scan_windowed
    from mlworker.synthetic.spectra import SpectraSimulator

    device = pick_device()
    sim = SpectraSimulator()
    inputs, redshifts = [], []
    for i in range(min(n, 64)):
        s = sim.simulate(i, 9, dla_boost=3.0)
        inputs.append(scan_input(sim.cfg.start_index, s.flux, s.ivar, s.z_qso)[0])
        redshifts.append(s.z_qso)
    x = torch.from_numpy(np.stack([inputs[i % len(inputs)] for i in range(n)])).to(device)
    z_qso = np.array([redshifts[i % len(inputs)] for i in range(n)])
    torch.manual_seed(0)
    model = DLANet(context=True).to(device).eval()
    out = {"device": str(device), "n_sightlines": n, "batch": batch}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
    results = {}
    with torch.inference_mode():
        for name, fn in (("windowed", scan_windowed), ("one-pass", scan)):
            fn(model, x[:batch], z_qso[:batch])  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            parts = [fn(model, x[i : i + batch], z_qso[i : i + batch]) for i in range(0, n, batch)]
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t
            results[name] = [torch.cat(p) for p in zip(*parts, strict=True)]
            out[name] = {"seconds": round(seconds, 3), "sightlines_per_s": round(n / seconds, 1)}
    out["ratio"] = round(out["one-pass"]["sightlines_per_s"] / out["windowed"]["sightlines_per_s"], 2)
    out["max_abs_difference"] = {
        k: float((a - b).abs().max())
        for k, a, b in zip(("prob", "offset_px", "log_nhi"), results["windowed"], results["one-pass"], strict=True)
    }
    return out


def make_release(n: int):
    from catalog.bulk import bulk_upsert
    from catalog.models import DLAAbsorber, DLARelease, ModelTask, ModelVersion
    from catalog.services.dla import ABSORBER_FIELDS
    from catalog.sky import sky_columns

    DLARelease.objects.filter(name="BENCH").delete()
    version, _ = ModelVersion.objects.get_or_create(
        task=ModelTask.DLA,
        variant="bench",
        number=1,
        defaults={"status": ModelVersion.Status.READY, "primary_metric": "dla_score"},
    )
    release = DLARelease.objects.create(name="BENCH", model_version=version, n_sightlines=n, n_absorbers=n)
    rng = np.random.default_rng(1)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    sky = sky_columns(ra, dec)
    log_nhi = rng.uniform(19.5, 22.0, n)
    z_abs = rng.uniform(2.0, 4.0, n)

    def rows():
        for i in range(n):
            yield (
                f"BENCH-{4000 + i // 1000:04d}-55000-{i % 1000 + 1:04d}-1",
                None,
                4000 + i // 1000,
                55000,
                i % 1000 + 1,
                None,
                float(ra[i]),
                float(dec[i]),
                float(z_abs[i] + 0.3),
                10.0,
                float(z_abs[i]),
                float(log_nhi[i]),
                0.15,
                0.9,
                "dla" if log_nhi[i] >= 20.3 else "subdla",
                False,
                version.pk,
                int(sky.healpix[i]),
                float(sky.cx[i]),
                float(sky.cy[i]),
                float(sky.cz[i]),
            )

    bulk_upsert(
        model=DLAAbsorber,
        fields=ABSORBER_FIELDS,
        rows=rows(),
        conflict_fields=("release", "identifier"),
        constants={"release_id": release.pk},
    )
    return release


def _client():
    """A logged-in client: the anonymous rate limit (API_ANON_RATE) is not what is measured."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench-dla")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def cone_speed(release, n_cones: int) -> dict:

    from catalog.models import DLAAbsorber
    from catalog.selectors import cone_filter

    rng = np.random.default_rng(2)
    client = _client()
    selector, api, sizes = [], [], []
    for _ in range(n_cones):
        ra = float(rng.uniform(0, 360))
        dec = float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
        radius = float(10 ** rng.uniform(-1, np.log10(3.0)))
        t = time.perf_counter()
        rows = list(
            cone_filter(DLAAbsorber.objects.filter(release=release), ra=ra, dec=dec, radius_deg=radius).values_list(
                "identifier", "z_abs"
            )
        )
        selector.append(time.perf_counter() - t)
        sizes.append(len(rows))
        t = time.perf_counter()
        response = client.get(f"/api/dla/?release=BENCH&ra={ra}&dec={dec}&radius={radius}&page_size=1000")
        api.append(time.perf_counter() - t)
        assert response.status_code == 200, response.content[:200]

    def ms(values, q):
        return round(1000 * float(np.percentile(values, q)), 2)

    return {
        "n_absorbers": release.n_absorbers,
        "n_cones": n_cones,
        "radius_deg": "0.1-3, log-uniform",
        "rows_per_cone_median": int(np.median(sizes)),
        "selector_ms": {"p50": ms(selector, 50), "p95": ms(selector, 95)},
        "api_json_ms": {"p50": ms(api, 50), "p95": ms(api, 95)},
        "target_met": ms(api, 95) < 50,
    }


def export_speed(release) -> dict:
    client = _client()
    out = {}
    z_cut = 2.0 + 2.0 * 0.1  # ~10% of the release
    for fmt in ("csv", "votable"):
        entry = {}
        for label, query in (("10%", f"&z_max={z_cut}"), ("100%", "")):
            url = f"/api/dla/?release=BENCH&format={fmt}{query}"
            t = time.perf_counter()
            response = client.get(url)
            n_bytes = sum(len(b) for b in response.streaming_content)
            seconds = time.perf_counter() - t
            tracemalloc.start()
            response = client.get(url)
            for _ in response.streaming_content:
                pass
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rows = release.absorbers.filter(z_abs__lte=z_cut).count() if query else release.n_absorbers
            entry[label] = {
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_s": int(rows / seconds),
                "mb": round(n_bytes / 1e6, 1),
                "peak_python_memory_mb": round(peak / 1e6, 1),
            }
        entry["target_met"] = entry["100%"]["rows_per_s"] >= 50_000
        out[fmt] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sightlines", type=int, default=300)
    parser.add_argument("--absorbers", type=int, default=1_000_000)
    parser.add_argument("--cones", type=int, default=200)
    parser.add_argument("--skip-scan", action="store_true")
    parser.add_argument(
        "--model-only",
        action="store_true",
        help="Only the bare network's scan rate on this machine's device (GPU if present); no database.",
    )
    parser.add_argument("--batch", type=int, default=8, help="Sightlines per scan call with --model-only.")
    args = parser.parse_args()
    if args.model_only:
        print(json.dumps({"commit": commit(), "model_only": model_only(args.sightlines, args.batch)}, indent=1))
        return
    setup(default_db="postgres://postgres@127.0.0.1:5432/galaxylab_bench_dla_speed")
    import io

    import torch
    from django.db import connection

    report = {"commit": commit(), "database": connection.vendor, "torch_threads": torch.get_num_threads()}
    if not args.skip_scan:
        report["scan_end_to_end"] = scan_speed(args.sightlines, io.StringIO())
    t = time.perf_counter()
    from catalog.models import DLARelease

    release = DLARelease.objects.filter(name="BENCH", n_absorbers=args.absorbers).first() or make_release(
        args.absorbers
    )
    report["release_build_s"] = round(time.perf_counter() - t, 1)
    report["cone_search"] = cone_speed(release, args.cones)
    report["export"] = export_speed(release)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
