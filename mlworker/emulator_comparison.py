"""The GALFIT emulator against the truth and against the reference fit: held-out mocks (truth
known), data without truth (emulator vs fit on the same cutouts), speed, and their plots."""

import io

import numpy as np

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion, Prediction
from mlworker.comparison import version_evaluation
from mlworker.ml.emulator import structure_metrics
from mlworker.registry import SERSIC_FIT_VARIANT

PARAMETERS = (
    ("sersic_n", "Sersic n"),
    ("r_e_arcsec", 'r_e (", major axis)'),
    ("mag", "magnitude"),
    ("q", "axis ratio"),
)


def emulator_version(*, number: int | None = None) -> ModelVersion:
    versions = ModelVersion.objects.filter(task=ModelTask.EMULATOR, variant="mock")
    version = versions.filter(number=number).first() if number else versions.filter(is_promoted=True).first()
    if version is None:
        which = f"version {number}" if number else "promoted version"
        raise ApplicationError(f"no {which} of emulator/mock: train one with manage.py train emulator")
    return version


def fit_version(*, band: str = "F160W") -> ModelVersion | None:
    """The newest ready reference-fit version for the band, if ``fit_sersic`` ever ran."""
    return (
        ModelVersion.objects.filter(
            task=ModelTask.EMULATOR, variant=SERSIC_FIT_VARIANT, band=band, status=ModelVersion.Status.READY
        )
        .order_by("-number")
        .first()
    )


def speed(version: ModelVersion, fit: ModelVersion | None) -> dict:
    """Galaxies per second per CPU core: the emulator's (measured at training on one thread)
    and the fit's (its self-check, or the held-out sample fitted at training)."""
    emulator_rate = version.metrics.get("galaxies_per_second_per_core")
    seconds = (fit.metrics.get("seconds_per_fit") if fit else None) or version.metrics.get("fitter", {}).get(
        "seconds_per_fit"
    )
    fit_rate = 1.0 / seconds if seconds else None
    return {
        "emulator": emulator_rate,
        "fit": fit_rate,
        "ratio": emulator_rate / fit_rate if emulator_rate and fit_rate else None,
    }


def data_pairs(*, version: ModelVersion, fit: ModelVersion, survey=None) -> dict:
    """Subjects (galaxies or mock images) with both an emulator prediction and a successful fit:
    arrays per parameter for each, and the magnitude to bin by (the fit's)."""
    fits = Prediction.objects.filter(model_version=fit)
    emus = Prediction.objects.filter(model_version=version)
    if survey is not None:
        fits = fits.filter(galaxy__survey=survey) | fits.filter(mock_image__snapshot__run__survey=survey)
    fitted = {}
    failures = 0
    for galaxy_id, image_id, values in fits.values_list("galaxy_id", "mock_image_id", "values").iterator(
        chunk_size=5000
    ):
        if values.get("ok"):
            fitted[(galaxy_id, image_id)] = values
        else:
            failures += 1
    pairs = []
    for galaxy_id, image_id, values in emus.values_list("galaxy_id", "mock_image_id", "values").iterator(
        chunk_size=5000
    ):
        other = fitted.get((galaxy_id, image_id))
        if other is not None:
            pairs.append((values, other))
    out = {"n": len(pairs), "fit_failures": failures}
    for name, _ in PARAMETERS:
        out[f"emulator_{name}"] = np.array([_number(e.get(name)) for e, _ in pairs])
        out[f"fit_{name}"] = np.array([_number(f.get(name)) for _, f in pairs])
    return out


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _as_method(arrays: dict, prefix: str) -> dict:
    return {name: arrays[f"{prefix}_{name}"] for name, _ in PARAMETERS}


def report(*, version: ModelVersion, survey=None) -> dict:
    """Everything the comparison page and ``compare emulator`` show."""
    fit = fit_version(band=version.band or "F160W")
    metrics = version.metrics
    out = {
        "held_out": {
            "emulator_vs_truth": {k: metrics[k] for k in ("overall", "by_magnitude") if k in metrics},
            "kind_auc": metrics.get("kind_auc", {}),
            "uncertainty_calibration": metrics.get("uncertainty_calibration", {}),
            "fitted_sample": metrics.get("fitter", {}),
        },
        "fit_version": str(fit) if fit else None,
        "fit_self_check": fit.metrics if fit else None,
        "speed": speed(version, fit),
        "data": None,
    }
    if fit is not None:
        pairs = data_pairs(version=version, fit=fit, survey=survey)
        if pairs["n"]:
            emulator, fitted = _as_method(pairs, "emulator"), _as_method(pairs, "fit")
            mags = np.where(np.isfinite(fitted["mag"]), fitted["mag"], emulator["mag"])
            out["data"] = {
                "n": pairs["n"],
                "fit_failures": pairs["fit_failures"],
                "emulator_vs_fit": structure_metrics(emulator, fitted, mags),
            }
        else:
            out["data"] = {"n": 0, "fit_failures": pairs["fit_failures"]}
    return out


def table_rows(comparison: dict) -> list[dict]:
    """One row per magnitude bin (and overall) of a ``structure_metrics`` result."""
    rows = []
    bins = [("all", comparison.get("overall", {}))] + list(comparison.get("by_magnitude", {}).items())
    for label, s in bins:
        if not s or not s.get("n"):
            continue
        rows.append(
            {
                "bin": label,
                "n": s["n"],
                "n_rel": s["n_rel"]["median_abs"],
                "log_n_nmad": s["log_n"]["nmad"],
                "log_r_e": s["log_r_e"]["median_abs"],
                "log_r_e_nmad": s["log_r_e"]["nmad"],
                "mag": s["mag"]["median_abs"],
                "mag_nmad": s["mag"]["nmad"],
                "q": s["q"]["median_abs"],
                "catastrophic": s["catastrophic_fraction"],
            }
        )
    return rows


# ---- plots ------------------------------------------------------------------------------------
def _figure(rows: list[tuple[str, dict, dict]], title: str) -> bytes:
    """A grid: one row per (label, x = reference, y = method), one column per parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(rows), len(PARAMETERS), figsize=(3.2 * len(PARAMETERS), 3.1 * len(rows)), squeeze=False
    )
    for r, (label, x, y) in enumerate(rows):
        for c, (name, axis_label) in enumerate(PARAMETERS):
            ax = axes[r][c]
            xv, yv = np.asarray(x[name], float), np.asarray(y[name], float)
            ok = np.isfinite(xv) & np.isfinite(yv)
            ax.scatter(xv[ok], yv[ok], s=3, alpha=0.35, color="tab:blue", rasterized=True)
            if ok.any():
                lo, hi = np.percentile(np.concatenate([xv[ok], yv[ok]]), [0.5, 99.5])
                ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
                ax.set_xlim(lo, hi)
                ax.set_ylim(lo, hi)
            if name in ("sersic_n", "r_e_arcsec"):
                from matplotlib.ticker import NullFormatter, ScalarFormatter

                ax.set_xscale("log")
                ax.set_yscale("log")
                ticks = [0.5, 1, 2, 4] if name == "sersic_n" else [0.1, 0.2, 0.5, 1.0]
                for axis in (ax.xaxis, ax.yaxis):
                    axis.set_ticks(ticks)
                    axis.set_major_formatter(ScalarFormatter())
                    axis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(f"{axis_label}, {label.split(' vs ')[1]}")
            ax.set_ylabel(f"{label.split(' vs ')[0]}")
            ax.set_title(f"{label}: {axis_label}", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def plot_held_out(version: ModelVersion) -> bytes:
    """Emulator vs truth on the held-out mocks; the fit vs truth and the emulator vs the fit on
    the fitted sample."""
    e = version_evaluation(version)
    single = np.isfinite(e["true_sersic_n"])
    truth = {name: e[f"true_{name}"][single] for name, _ in PARAMETERS}
    emulator = {name: e[f"emulator_{name}"][single] for name, _ in PARAMETERS}
    rows = [("emulator vs truth", truth, emulator)]
    if "fitter_index" in e:
        position = {int(i): j for j, i in enumerate(e["index"])}
        sub = np.array([position[int(i)] for i in e["fitter_index"]], dtype=int)
        ok = e["fitter_ok"].astype(bool)
        fit = {name: np.where(ok, e[f"fitter_{name}"], np.nan) for name, _ in PARAMETERS}
        sub_truth = {name: e[f"true_{name}"][sub] for name, _ in PARAMETERS}
        sub_emulator = {name: e[f"emulator_{name}"][sub] for name, _ in PARAMETERS}
        rows += [("fit vs truth", sub_truth, fit), ("emulator vs fit", fit, sub_emulator)]
    return _figure(rows, f"{version}: held-out single-Sersic mocks")


def plot_data(version: ModelVersion) -> bytes:
    fit = fit_version(band=version.band or "F160W")
    if fit is None:
        raise ApplicationError("no reference fit has run yet (manage.py fit_sersic)")
    pairs = data_pairs(version=version, fit=fit)
    if not pairs["n"]:
        raise ApplicationError(f"no subject has both a {version} prediction and a successful {fit} fit")
    return _figure(
        [("emulator vs fit", _as_method(pairs, "fit"), _as_method(pairs, "emulator"))],
        f"{version} against {fit} on {pairs['n']} cutouts and mock images",
    )


def galaxy_structure(*, galaxy_id: int) -> list[dict]:
    """The promoted emulator's and the newest reference fit's measurements of a galaxy."""
    out = []
    predictions = Prediction.objects.filter(galaxy_id=galaxy_id, model_version__task=ModelTask.EMULATOR).select_related(
        "model_version"
    )
    emulator = [p for p in predictions if p.model_version.variant != SERSIC_FIT_VARIANT and p.model_version.is_promoted]
    fits = sorted(
        (p for p in predictions if p.model_version.variant == SERSIC_FIT_VARIANT), key=lambda p: -p.model_version.number
    )
    for p in emulator + fits[:1]:
        out.append({"version": p.model_version, "values": p.values})
    return out
