"""Environment methods as versioned results: photo-z slices and SORT are not trained, but each
setting is a version, measured once on the held-out mock light cone like a trained model."""

from dataclasses import asdict

import numpy as np
from django.db import transaction
from django.db.models import Max

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion
from mlworker.registry import ENVIRONMENT_METHODS


def evaluation_galaxies() -> int | None:
    """The held-out light cone's size: GALAXYLAB_ENVIRONMENT_EVALUATION_GALAXIES (tests shrink
    it), else the default 100,000. The learned estimator is measured on the same cone."""
    from django.conf import settings

    return getattr(settings, "GALAXYLAB_ENVIRONMENT_EVALUATION_GALAXIES", None)


def environment_evaluation(*, method: str, z: np.ndarray, estimated: dict, lc, truth: dict) -> dict:
    """Held-out metrics of one method on the evaluation light cone: Spearman correlations with
    the true log delta_5, the densest 10%, and xi(s) against the truth's with jackknife errors."""
    from mlworker.ml.environment import method_metrics, xi_s

    metrics = method_metrics(estimated, truth)
    xi = xi_s(lc.ra, lc.dec, {"truth": lc.z_obs, method: z})
    metrics["xi"] = xi
    metrics["xi_mean_ratio"] = xi[method]["mean_ratio"]
    metrics["xi_within_2_sigma"] = xi[method]["within_2_sigma"]
    metrics["spearman_log_delta5"] = metrics["spearman"]["log_delta5"]
    metrics["n_test"] = int(len(lc))
    return metrics


def environment_method_version_ensure(*, method: str, overrides: dict | None = None) -> tuple[ModelVersion, bool]:
    """The ready version of ``method`` ("photoz" or "sort") with these settings, or a new one,
    measured on the held-out light cone first. Returns (version, created)."""
    from mlworker.ml.environment import HALF_WIDTH, Catalog, estimate
    from mlworker.ml.sort import SortConfig
    from mlworker.synthetic.lightcone import EVALUATION_SEED, evaluation_lightcone

    if method not in ENVIRONMENT_METHODS:
        raise ApplicationError(f"unknown environment method {method!r} (methods: {', '.join(ENVIRONMENT_METHODS)})")
    overrides = dict(overrides or {})
    config: dict = {"half_width_t": HALF_WIDTH[method], "evaluation_seed": EVALUATION_SEED}
    sort_config = None
    if method == "sort":
        known = set(SortConfig.__dataclass_fields__)
        unknown = set(overrides) - known
        if unknown:
            raise ApplicationError(f"unknown SORT settings {sorted(unknown)} (known: {sorted(known)})")
        sort_config = SortConfig(**overrides)
        config["sort"] = asdict(sort_config)
    elif overrides:
        raise ApplicationError("the photo-z method has no settings")
    for version in ModelVersion.objects.filter(
        task=ModelTask.ENVIRONMENT, variant=method, status=ModelVersion.Status.READY
    ).order_by("-number"):
        if version.config == config:
            return version, False
    lc, truth = evaluation_lightcone(evaluation_galaxies())
    catalog = Catalog(lc.ra, lc.dec, lc.z_phot, lc.z_phot_err, lc.z_spec, lc.mag)
    estimated = estimate(method, catalog, sort_config=sort_config)
    metrics = environment_evaluation(method=method, z=estimated["z"], estimated=estimated, lc=lc, truth=truth)
    with transaction.atomic():
        number = (
            ModelVersion.objects.select_for_update()
            .filter(task=ModelTask.ENVIRONMENT, variant=method)
            .aggregate(n=Max("number"))["n"]
            or 0
        ) + 1
        version = ModelVersion.objects.create(
            task=ModelTask.ENVIRONMENT,
            variant=method,
            number=number,
            status=ModelVersion.Status.READY,
            primary_metric="spearman_log_delta5",
            primary_value=metrics["spearman_log_delta5"],
            higher_is_better=True,
            metrics=metrics,
            config=config,
            device="cpu",
        )
    return version, True
