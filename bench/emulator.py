"""Speed of the GALFIT emulator against the reference fit, per CPU core, on the same images.

    python bench/emulator.py [--galaxies 2000] [--fits 100] [--model-only]

Draws fresh single-Sersic mocks (magnitudes 19.5-24), then measures galaxies per second on
ONE core: the emulator through ``mlworker.ml.emulator.predict`` (normalisation, network,
outputs; one torch thread) and the reference fit (``fit_sersic``, one process) on the first
--fits of the same images. Target on this CPU: emulator >= 50x the fit per core (the paper's
CPU figure). Uses the promoted emulator of the acceptance database when there is one (else
the default architecture, untrained: speed does not depend on the weights). With a GPU, also
the emulator's rate there (model only, batches of 1,024). Prints JSON.
"""

import argparse
import json
import sys
import time

import numpy as np
from _setup import ROOT, commit, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, default=2000)
    parser.add_argument("--fits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=77)
    parser.add_argument("--model-only", action="store_true", help="Only the emulator on this machine's device.")
    args = parser.parse_args()
    setup(default_db="postgres://postgres@127.0.0.1:5432/galaxylab_bench_emulator")

    import torch

    from catalog.models import ModelVersion
    from mlworker.ml.emulator import EmulatorCNN, EmulatorConfig, load_model, predict
    from mlworker.ml.sersic_fit import FitSettings, fit_sersic
    from mlworker.registry import task_spec
    from mlworker.synthetic.structure import add_noise, draw_structures, render_clean

    p = draw_structures(args.galaxies, args.seed, mag_range=(19.5, 24.0), composite_fraction=0.0)
    images = add_noise(render_clean(p, workers=2), args.seed)
    version = ModelVersion.objects.filter(task="emulator", variant="mock", is_promoted=True).first()
    if version is not None:
        checkpoint = task_spec("emulator").checkpoint(version)
        source = str(version)
    else:
        cfg = EmulatorConfig()
        model = EmulatorCNN(cfg.channels, cfg.hidden)
        checkpoint = {
            "model": model.state_dict(),
            "model_args": {"channels": list(cfg.channels), "hidden": cfg.hidden, "image_size": 64},
            "target_centre": [0.0, 0.5, 0.3, 0.6],
            "target_scale": [1.0, 0.3, 0.3, 0.2],
            "pixel_scale_arcsec": 0.06,
        }
        source = "default architecture, untrained"
    report = {"commit": commit(), "emulator": source, "n_galaxies": args.galaxies}
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        model = load_model(checkpoint, gpu)
        from mlworker.ml.imaging import normalise

        x = torch.from_numpy(normalise(images))[:, None].to(gpu).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(3):
                model(x[:1024])
            torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(20):
                for i in range(0, len(x), 1024):
                    model(x[i : i + 1024])
            torch.cuda.synchronize()
        report["gpu"] = {
            "device": torch.cuda.get_device_name(0),
            "model_only_galaxies_per_s": 20 * len(x) / (time.perf_counter() - started),
        }
    if args.model_only:
        print(json.dumps(report, indent=1))
        return
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    model = load_model(checkpoint, cpu)
    predict(checkpoint, images[:128], 25.95, device=cpu, model=model)  # warm up
    started = time.perf_counter()
    predict(checkpoint, images, 25.95, device=cpu, model=model)
    emulator_rate = len(images) / (time.perf_counter() - started)
    settings = FitSettings(exposure_time_s=3000.0)
    started = time.perf_counter()
    fits = [fit_sersic(image, settings) for image in images[: args.fits]]
    fit_seconds = time.perf_counter() - started
    fit_rate = args.fits / fit_seconds
    evaluations = [f.n_evaluations for f in fits]
    report["cpu_one_core"] = {
        "emulator_galaxies_per_s": round(emulator_rate, 1),
        "fit_galaxies_per_s": round(fit_rate, 2),
        "fit_seconds_per_galaxy": round(fit_seconds / args.fits, 3),
        "fit_model_evaluations_median": float(np.median(evaluations)),
        "fit_failures": int(sum(not f.ok for f in fits)),
        "ratio": round(emulator_rate / fit_rate, 1),
        "target_ratio": 50,
        "met": bool(emulator_rate / fit_rate >= 50),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
