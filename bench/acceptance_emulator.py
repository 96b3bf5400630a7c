"""Acceptance of the GALFIT emulator: does it agree with the fit as well as the fit agrees with itself?

    python bench/acceptance_emulator.py [--galaxies 1000] [--small] [--check] [--set key=value ...]

With fixed seeds: trains the default emulator configuration through the platform's training
service (GalSim mocks made on the worker, held-out metrics, registration), then draws
--galaxies fresh single-Sersic mocks (magnitudes 19.5-24, other seeds than training), renders
each once and adds two independent noise realisations. The emulator measures the first; the
reference fit (astropy Sersic2D convolved with the PSF) fits both. A second fresh set of
singles and bulge + disk systems (magnitudes 19.5-23) tests the kind probabilities. Prints JSON.

Targets (the seed's claim): over magnitudes 22-24, NMAD(emulator - fit) <= 1.3 x NMAD(fit -
fit') for log n, log r_e, magnitude and q (brighter bins reported); against the truth, the
emulator's median absolute errors within 1.5x the fit's and fewer catastrophic outliers
(|dn| > 1 or |d log r_e| > 0.3; a failed fit counts as one); ROC AUC >= 0.95 for P(bulge),
P(disk) and P(bulge+disk) against the true kind at magnitude < 23. --small (CI) trains
briefly on few mocks and checks loose floors; --check exits 1 when a target (or floor) is missed.
"""

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from _setup import ROOT, commit, setup

PARAMS = ("log_n", "log_r_e", "mag", "q")
MAIN_BIN = (22.0, 24.0)
BINS = ((19.5, 21.0), (21.0, 22.0), (22.0, 23.0), (23.0, 24.0), MAIN_BIN)
SMALL = {"train_galaxies": 3000, "test_galaxies": 300, "epochs": 6, "fitter_sample": 20}
FLOOR_RATIO = {"log_n": 4.0, "log_r_e": 4.0, "mag": 4.0, "q": 10.0}  # --small: NMAD(emulator - fit) / NMAD(fit - fit')


def _fit_all(images: np.ndarray) -> list[dict]:
    from mlworker.ml.sersic_fit import FitSettings, fit_sersic

    settings = FitSettings(exposure_time_s=3000.0)
    return [fit_sersic(image, settings).as_dict() for image in images]


def fit_in_parallel(images: np.ndarray, workers: int) -> list[dict]:
    chunks = np.array_split(np.arange(len(images)), max(1, workers * 4))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(_fit_all, [images[c] for c in chunks if len(c)])
        return [fit for part in parts for fit in part]


def as_arrays(fits: list[dict]) -> dict:
    def column(name):
        return np.array([np.nan if f[name] is None else f[name] for f in fits], dtype=float)

    return {
        "ok": np.array([f["ok"] for f in fits]),
        "mag": column("mag"),
        "r_e_arcsec": column("r_e_arcsec"),
        "sersic_n": column("sersic_n"),
        "q": column("q"),
    }


def differences(a: dict, b: dict) -> dict:
    from mlworker.ml.emulator import differences as diff

    return diff(a, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, help="Fresh single-Sersic mocks (default 1000; 150 with --small).")
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--small", action="store_true", help="CI size: short training on few mocks, loose floors.")
    parser.add_argument("--check", action="store_true", help="Exit 1 if a target is missed.")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="Training option override.")
    parser.add_argument("--workers", type=int, default=2, help="Processes fitting.")
    args = parser.parse_args()
    n = args.galaxies or (150 if args.small else 1000)
    setup(default_db="postgres://postgres@127.0.0.1:5432/galaxylab_bench_emulator")
    code_commit = commit()

    import torch

    from catalog.models import ModelVersion
    from mlworker.management.commands.train import parse_overrides
    from mlworker.ml.emulator import kind_aucs, nmad, predict
    from mlworker.ml.emulator import structure_metrics as _  # noqa: F401 - same definitions as the platform
    from mlworker.models import TrainingRun
    from mlworker.registry import task_spec
    from mlworker.services.training import training_execute
    from mlworker.synthetic.structure import KINDS, add_noise, draw_structures, render_clean

    timings = {}
    started = time.perf_counter()
    ModelVersion.objects.filter(task="emulator").delete()
    TrainingRun.objects.filter(task="emulator").delete()
    overrides = dict(SMALL) if args.small else {}
    overrides.update(parse_overrides(args.set))
    run = TrainingRun.objects.create(task="emulator", variant="mock", trigger=TrainingRun.Trigger.CLI, config=overrides)
    t = time.perf_counter()
    training_execute(run_id=run.pk, worker="bench")  # the worker's code path, in this process
    timings["train_total_s"] = round(time.perf_counter() - t, 1)
    run.refresh_from_db()
    if run.status != TrainingRun.Status.SUCCEEDED:
        raise SystemExit(f"training failed: {run.error}")
    version = run.model_version
    checkpoint = task_spec("emulator").checkpoint(version)

    t = time.perf_counter()
    singles = draw_structures(n, args.seed, mag_range=(19.5, 24.0), composite_fraction=0.0)
    clean = render_clean(singles, workers=args.workers)
    first, second = add_noise(clean, args.seed + 1), add_noise(clean, args.seed + 2)
    mixed = draw_structures(n, args.seed + 10, mag_range=(19.5, 23.0), composite_fraction=0.3)
    mixed_images = add_noise(render_clean(mixed, workers=args.workers), args.seed + 3)
    timings["mocks_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    cpu = torch.device("cpu")
    emulator = predict(checkpoint, first, 25.95, device=cpu)
    kinds_predicted = predict(checkpoint, mixed_images, 25.95, device=cpu)
    timings["emulator_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    fit_a = as_arrays(fit_in_parallel(first, args.workers))
    fit_b = as_arrays(fit_in_parallel(second, args.workers))
    timings["fits_s"] = round(time.perf_counter() - t, 1)
    truth = {"mag": singles.mag, "r_e_arcsec": singles.r_e_arcsec, "sersic_n": singles.sersic_n, "q": singles.q}

    d_emu_fit = differences(emulator, fit_a)
    d_fit_fit = differences(fit_a, fit_b)
    d_emu_true = differences(emulator, truth)
    d_fit_true = differences(fit_a, truth)
    both = fit_a["ok"] & fit_b["ok"]
    mags = singles.mag
    by_bin = {}
    for lo, hi in BINS:
        sel = (mags >= lo) & (mags < hi)
        entry = {"n": int(sel.sum()), "n_fit_pairs": int((sel & both).sum())}
        for p in PARAMS:
            a = nmad(d_emu_fit[p][sel & fit_a["ok"]])
            b = nmad(d_fit_fit[p][sel & both])
            entry[p] = {"nmad_emulator_vs_fit": a, "nmad_fit_vs_refit": b, "ratio": a / b if b else None}
        by_bin[f"{lo:g}-{hi:g}"] = entry
    vs_truth = {}
    for p in PARAMS:
        e = float(np.median(np.abs(d_emu_true[p])))
        f = float(np.median(np.abs(d_fit_true[p][fit_a["ok"]])))
        vs_truth[p] = {"emulator_median_abs": e, "fit_median_abs": f, "ratio": e / f if f else None}

    def catastrophic(d, dn):
        return (np.abs(dn) > 1.0) | (np.abs(d["log_r_e"]) > 0.3)

    emu_cat = catastrophic(d_emu_true, emulator["sersic_n"] - truth["sersic_n"])
    fit_cat = catastrophic(d_fit_true, fit_a["sersic_n"] - truth["sersic_n"])
    fit_cat = np.where(fit_a["ok"], fit_cat, True)  # a failed fit measured nothing
    kind_codes = np.array([list(KINDS).index(k) for k in mixed.kind])
    auc = kind_aucs(kinds_predicted, kind_codes, mixed.mag, max_mag=23.0)

    main_bin = by_bin[f"{MAIN_BIN[0]:g}-{MAIN_BIN[1]:g}"]
    if args.small:  # a few minutes of training on 3,000 mocks: it must already measure structure
        checks = {
            f"nmad_ratio_{p}_below_{FLOOR_RATIO[p]:g}": (main_bin[p]["ratio"] or 99) <= FLOOR_RATIO[p] for p in PARAMS
        }
        checks |= {
            "auc_disk_above_0.9": auc["disk"] >= 0.9,
            "fit_self_consistent": main_bin["log_n"]["nmad_fit_vs_refit"] < 0.3,
        }
    else:
        checks = {f"nmad_ratio_{p}": (main_bin[p]["ratio"] or 99) <= 1.3 for p in PARAMS}
        checks |= {f"median_abs_ratio_{p}": (vs_truth[p]["ratio"] or 99) <= 1.5 for p in PARAMS}
        checks["fewer_catastrophic"] = bool(emu_cat.mean() < fit_cat.mean())
        checks |= {f"auc_{k}": auc[k] >= 0.95 for k in ("bulge", "disk", "bulge_disk")}
    report = {
        "commit": code_commit,
        "mode": "small (CI floors)" if args.small else "full (targets)",
        "version": str(version),
        "config": version.config,
        "held_out_metrics_of_the_version": {
            k: version.metrics.get(k) for k in ("nmad_log_n", "kind_auc", "train_seconds")
        },
        "n_galaxies": n,
        "fits": {
            "failures_first": int((~fit_a["ok"]).sum()),
            "failures_second": int((~fit_b["ok"]).sum()),
            "seconds_per_fit_per_core": timings["fits_s"] * args.workers / (2 * n),
        },
        "agreement_by_magnitude": by_bin,
        "vs_truth": vs_truth,
        "catastrophic_fraction": {"emulator": float(emu_cat.mean()), "fit_including_failures": float(fit_cat.mean())},
        "kind_auc": auc,
        "seconds": {**timings, "all": round(time.perf_counter() - started, 1)},
        "checks": checks,
        "passed": bool(all(checks.values())),
    }
    print(json.dumps(report, indent=1, default=float))
    if args.check and not report["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
