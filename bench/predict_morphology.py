"""Morphology inference through the production path: packed store read, preprocessing, the
network, the out-of-distribution check and the bulk write of prediction rows to PostgreSQL.

    python bench/predict_morphology.py [--galaxies 20000] [--chunk 1000] [--batch 64]

Uses the promoted CANDELS model of the bench database (bench/acceptance_morphology.py makes
it) over the bench-morphology galaxies (passes repeat until --galaxies predictions are made).
Prints model-only images/s (normalised tensors already in memory) and end-to-end galaxies/s,
without and with 8-view test-time augmentation, and the configuration. Targets on this 2-core
CPU: end-to-end >= 1,000 galaxies/s and >= 60% of the model-only rate; >= 150 galaxies/s with
the 8 views. On a GPU machine, the model-only rate is the figure to report.
"""

import argparse
import json
import os
import platform
import time

from _setup import commit, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, default=20000, help="Predictions to make per mode.")
    parser.add_argument("--chunk", type=int, default=1000, help="Subjects per chunk (GALAXYLAB_PREDICTION_CHUNK).")
    parser.add_argument("--batch", type=int, default=64, help="Network batch size.")
    parser.add_argument("--model-only", action="store_true", help="Only the network (no database; e.g. on a GPU).")
    args = parser.parse_args()
    if args.model_only:
        return model_only_report(args)
    setup(default_db="postgres://postgres@127.0.0.1:5432/galaxylab_bench_morphology")

    import torch
    from django.db import connection, transaction

    from catalog.models import Cutout, ModelVersion, Prediction
    from mlworker.ml import morphology
    from mlworker.ml.device import pick_device
    from mlworker.registry import TASKS
    from mlworker.services.predictions import prediction_rows_write

    version = ModelVersion.objects.filter(task="morphology", variant="candels", is_promoted=True).first()
    if version is None:
        raise SystemExit("no promoted morphology/candels model: run bench/acceptance_morphology.py first")
    spec = TASKS["morphology"]
    device = pick_device()
    checkpoint, model = spec.load(version, device)
    ids = sorted(
        Cutout.objects.filter(band__survey__name="bench-morphology", band__name=version.band).values_list(
            "galaxy_id", flat=True
        )
    )
    if not ids:
        raise SystemExit("no bench-morphology cutouts: run bench/acceptance_morphology.py first")

    # Model only: normalised images already in memory, straight through the network.
    from catalog.selectors import cutout_arrays

    band = Cutout.objects.filter(galaxy_id=ids[0]).select_related("band").first().band
    _, images = cutout_arrays(galaxy_ids=ids[: args.batch * 20], band=band, size=checkpoint["config"]["image_size"])
    x = torch.from_numpy(morphology.normalise(images))[:, None].contiguous(memory_format=torch.channels_last)
    model_rate = _model_rate(model, x.to(device), args.batch, device)

    def end_to_end(tta: bool, n_target: int) -> float:
        checkpoint["config"]["tta"] = tta
        Prediction.objects.filter(model_version=version).delete()
        done, started = 0, time.perf_counter()
        while done < n_target:
            for start in range(0, len(ids), args.chunk):
                chunk = ids[start : start + args.chunk]
                rows = []
                for b in range(0, len(chunk), 256):  # as prediction_chunk_execute does (GALAXYLAB_PREDICTION_BATCH)
                    rows += spec.predict(version, (checkpoint, model), chunk[b : b + 256], device)
                with transaction.atomic():
                    prediction_rows_write(version=version, subject_field="galaxy", rows=rows, subject_ids=chunk)
                done += len(rows)
                if done >= n_target:
                    break
        return done / (time.perf_counter() - started)

    e2e = end_to_end(False, args.galaxies)
    tta_model_rate = _model_rate(model, x.to(device), args.batch, device, tta=True)
    e2e_tta = end_to_end(True, max(2000, args.galaxies // 8))
    checkpoint["config"]["tta"] = False
    report = {
        "commit": commit(),
        "version": str(version),
        "database": connection.vendor,
        "device": device.type,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "network": {"channels": checkpoint["model_args"]["channels"], "hidden": checkpoint["model_args"]["hidden"]},
        "image_size": checkpoint["config"]["image_size"],
        "batch": args.batch,
        "chunk": args.chunk,
        "galaxies": args.galaxies,
        "model_only_images_per_s": round(model_rate),
        "end_to_end_galaxies_per_s": round(e2e),
        "end_to_end_fraction_of_model_only": round(e2e / model_rate, 3),
        "tta8_model_only_galaxies_per_s": round(tta_model_rate),
        "tta8_end_to_end_galaxies_per_s": round(e2e_tta),
        "targets": {
            "end_to_end_ge_1000": e2e >= 1000,
            "end_to_end_ge_60pct_of_model_only": e2e >= 0.6 * model_rate,
            "tta8_end_to_end_ge_150": e2e_tta >= 150,
        },
    }
    print(json.dumps(report, indent=1))


def _model_rate(model, x, batch: int, device, tta: bool = False, seconds: float = 5.0) -> float:
    """Images (or, with tta, galaxies seen in 8 views) per second through the network."""
    import torch

    from mlworker.ml.device import autocast
    from mlworker.ml.morphology import eight_views

    def run(xb):
        views = eight_views(xb) if tta else [xb]
        with autocast(device):
            for v in views:
                model(v.contiguous(memory_format=torch.channels_last))

    with torch.inference_mode():
        run(x[:batch])  # warm-up
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for start in range(0, len(x), batch):
                run(x[start : start + batch])
                done += len(x[start : start + batch])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return done / (time.perf_counter() - started)


def model_only_report(args) -> None:
    """The network alone on random images of the default configuration (no database)."""
    import torch

    from mlworker.ml.device import pick_device
    from mlworker.ml.morphology import MorphologyCNN, MorphologyConfig

    cfg = MorphologyConfig()
    device = pick_device()
    model = MorphologyCNN(28, tuple(cfg.channels), cfg.hidden).to(device).to(memory_format=torch.channels_last).eval()
    x = torch.randn(args.batch * 40, 1, cfg.image_size, cfg.image_size, device=device)
    rates = {}
    for batch in (args.batch, 256, 1024):
        rates[batch] = round(_model_rate(model, x, batch, device))
    tta = round(_model_rate(model, x, 256, device, tta=True))
    print(
        json.dumps(
            {
                "commit": commit(),
                "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                "network": {"channels": list(cfg.channels), "hidden": cfg.hidden, "image_size": cfg.image_size},
                "model_only_images_per_s_by_batch": rates,
                "tta8_model_only_galaxies_per_s_batch_256": tta,
                "torch": torch.__version__,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
