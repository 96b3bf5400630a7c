"""Environment on the platform: a survey's galaxies as the estimators read them, the survey-wide
estimate a prediction run shares between its chunks, and what the pages show."""

import numpy as np
from django.db.models import Count, Max

from catalog.models import Galaxy, ModelTask, ModelVersion, Prediction, Survey
from mlworker.ml.environment import Catalog

METHOD_LABELS = {"photoz": "photo-z slices", "sort": "SORT", "learned": "learned (network)"}
_CACHE: dict[tuple, dict] = {}


def survey_catalog(*, survey: Survey) -> tuple[np.ndarray, Catalog]:
    """(galaxy ids, catalog) of the survey's galaxies with a photometric or spectroscopic redshift."""
    rows = (
        Galaxy.objects.filter(survey=survey)
        .exclude(z_phot__isnull=True, z_spec__isnull=True)
        .order_by("pk")
        .values_list("pk", "ra", "dec", "z_phot", "z_phot_err", "z_spec", "mag")
    )
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]

    def array(j):
        return np.array([np.nan if v is None else v for v in columns[j]], dtype=float)

    ids = np.array(columns[0], dtype=np.int64)
    z_phot = array(3)
    z_spec = array(5)
    z_phot = np.where(np.isfinite(z_phot), z_phot, z_spec)  # a galaxy with only a spec-z: its own best guess
    return ids, Catalog(ra=array(1), dec=array(2), z_phot=z_phot, z_phot_err=array(4), z_spec=z_spec, mag=array(6))


def _key(version: ModelVersion, survey: Survey) -> tuple:
    """Changes when the version or the survey's galaxies do (ids come and go with ingests)."""
    stats = Galaxy.objects.filter(survey=survey).aggregate(n=Count("pk"), last=Max("pk"))
    return (version.pk, str(version.created_at), survey.pk, stats["n"], stats["last"])


def survey_estimate(*, version: ModelVersion, loaded, survey: Survey, device=None, renew=None) -> dict:
    """{"position": {galaxy id: row}, "values": {name: array}} for every galaxy of the survey
    with a redshift, computed once per worker process (the chunks of a run share it)."""
    key = _key(version, survey)
    if key in _CACHE:
        return _CACHE[key]
    ids, catalog = survey_catalog(survey=survey)
    if version.variant == "learned":
        from mlworker.ml.environment_learned import neighbourhood_features, predict

        checkpoint, model = loaded
        features = neighbourhood_features(catalog)
        if renew is not None:
            renew()
        values = predict(checkpoint, features, catalog.z_best, device=device, model=model)
    else:
        from mlworker.ml.environment import estimate
        from mlworker.ml.sort import SortConfig

        sort_config = SortConfig(**version.config.get("sort", {})) if version.variant == "sort" else None
        values = estimate(version.variant, catalog, sort_config=sort_config, renew=renew)
    _CACHE.clear()
    _CACHE[key] = {"position": {int(g): i for i, g in enumerate(ids)}, "values": values}
    return _CACHE[key]


def galaxy_environment(*, galaxy_id: int) -> list[dict]:
    """The newest ready version of each method that measured the galaxy, with its values."""
    out = []
    predictions = (
        Prediction.objects.filter(galaxy_id=galaxy_id, model_version__task=ModelTask.ENVIRONMENT)
        .select_related("model_version")
        .order_by("model_version__variant", "-model_version__number")
    )
    seen = set()
    for p in predictions:
        variant = p.model_version.variant
        if variant in seen:
            continue
        seen.add(variant)
        out.append({"method": METHOD_LABELS.get(variant, variant), "version": p.model_version, "values": p.values})
    return out


# ---- the comparison of methods ---------------------------------------------------------------
def method_versions() -> dict[str, ModelVersion]:
    """The newest ready photo-z and SORT versions and the promoted learned one."""
    out = {}
    for method in ("photoz", "sort"):
        version = (
            ModelVersion.objects.filter(task=ModelTask.ENVIRONMENT, variant=method, status=ModelVersion.Status.READY)
            .order_by("-number")
            .first()
        )
        if version is not None:
            out[method] = version
    learned = ModelVersion.objects.filter(task=ModelTask.ENVIRONMENT, variant="learned", is_promoted=True).first()
    if learned is not None:
        out["learned"] = learned
    return out


def comparison_rows(versions: dict[str, ModelVersion]) -> list[dict]:
    """One row per method: its held-out metrics on the evaluation light cone."""
    rows = []
    for method, version in versions.items():
        m = version.metrics
        rows.append(
            {
                "method": method,
                "label": METHOD_LABELS.get(method, method),
                "version": version,
                "spearman": m.get("spearman_log_delta5"),
                "spearman_all": m.get("spearman", {}),
                "completeness": m.get("densest_10", {}).get("completeness"),
                "purity": m.get("densest_10", {}).get("purity"),
                "xi_mean_ratio": m.get("xi_mean_ratio"),
                "xi_within_2_sigma": m.get("xi_within_2_sigma"),
                "n_test": m.get("n_test"),
            }
        )
    return rows


def survey_agreement(*, versions: dict[str, ModelVersion], survey: Survey) -> dict:
    """On a survey without truth: the Spearman correlation of log delta_5 between methods."""
    from mlworker.ml.environment import spearman

    values = {}
    for method, version in versions.items():
        pairs = Prediction.objects.filter(model_version=version, galaxy__survey=survey).values_list(
            "galaxy_id", "values"
        )
        values[method] = {g: v.get("log_delta5") for g, v in pairs.iterator(chunk_size=10_000)}
    out = {"n": {m: len(v) for m, v in values.items()}, "pairs": []}
    methods = list(values)
    for i, a in enumerate(methods):
        for b in methods[i + 1 :]:
            common = sorted(set(values[a]) & set(values[b]))
            x = np.array([np.nan if values[a][g] is None else values[a][g] for g in common], dtype=float)
            y = np.array([np.nan if values[b][g] is None else values[b][g] for g in common], dtype=float)
            out["pairs"].append(
                {"a": METHOD_LABELS[a], "b": METHOD_LABELS[b], "n": len(common), "spearman": spearman(x, y)}
            )
    return out


def xi_png(versions: dict[str, ModelVersion]) -> bytes:
    """xi(s) of the truth and of each method with jackknife errors, and each method's ratio to
    the truth (the +-15% band shaded), on the held-out evaluation light cone."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    colours = {"photoz": "tab:orange", "sort": "tab:blue", "learned": "tab:green"}
    truth_drawn = False
    for method, version in versions.items():
        xi = version.metrics.get("xi", {})
        if not xi:
            continue
        truth = xi.get("truth")
        if truth and not truth_drawn:
            top.errorbar(
                truth["s"],
                truth["xi"],
                yerr=truth["xi_err"],
                color="k",
                marker="o",
                ms=3,
                label="truth (redshift space)",
            )
            truth_drawn = True
        mine = xi.get(method)
        if mine:
            label = f"{METHOD_LABELS.get(method, method)} ({version})"
            top.errorbar(
                mine["s"], mine["xi"], yerr=mine["xi_err"], color=colours.get(method), marker="s", ms=3, label=label
            )
            bottom.errorbar(
                mine["s"], mine["ratio"], yerr=mine["ratio_err"], color=colours.get(method), marker="s", ms=3
            )
    top.set_xscale("log")
    top.set_yscale("symlog", linthresh=0.01)
    top.set_ylabel("xi(s)")
    top.legend(fontsize=8)
    bottom.axhspan(0.85, 1.15, color="0.85")
    bottom.axhline(1.0, color="k", lw=0.8)
    bottom.axvspan(4, 30, color="tab:blue", alpha=0.05)
    bottom.set_ylim(0, 2)
    bottom.set_xlabel("s [h^-1 Mpc]")
    bottom.set_ylabel("xi / xi_truth")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()
