"""The reference Sersic fit as a versioned method: its settings, its own accuracy, its runs."""

import math
from dataclasses import asdict

import numpy as np
from django.db import transaction
from django.db.models import Max

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion
from mlworker.registry import SERSIC_FIT_VARIANT

SELF_CHECK_GALAXIES = 60
SELF_CHECK_MAG_RANGE = (19.5, 21.0)
SELF_CHECK_SEED = 21


def sersic_fit_self_check(*, settings, n: int = SELF_CHECK_GALAXIES) -> dict:
    """Fits ``n`` bright single-Sersic mocks (magnitudes 19.5-21) and measures the fitter
    against their truth: median |dn|/n (the fitter must reach < 5%), |d log r_e|, |d mag|."""
    from mlworker.ml.sersic_fit import fit_sersic
    from mlworker.synthetic.structure import add_noise, draw_structures, render_clean

    p = draw_structures(n, SELF_CHECK_SEED, mag_range=SELF_CHECK_MAG_RANGE, composite_fraction=0.0)
    images = add_noise(render_clean(p), SELF_CHECK_SEED)
    fits = [fit_sersic(image, settings) for image in images]
    ok = np.array([f.ok for f in fits])
    n_fit = np.array([f.sersic_n for f in fits])
    r_fit = np.array([f.r_e_arcsec for f in fits])
    m_fit = np.array([f.mag for f in fits])
    return {
        "n_checked": n,
        "failures": int((~ok).sum()),
        "median_rel_dn_bright": float(np.median(np.abs(n_fit[ok] - p.sersic_n[ok]) / p.sersic_n[ok])),
        "median_abs_dlog_r_e_bright": float(np.median(np.abs(np.log10(r_fit[ok] / p.r_e_arcsec[ok])))),
        "median_abs_dmag_bright": float(np.median(np.abs(m_fit[ok] - p.mag[ok]))),
        "seconds_per_fit": float(np.mean([f.seconds for f in fits])),
        "magnitudes": list(SELF_CHECK_MAG_RANGE),
    }


def sersic_fit_version_ensure(*, band: str = "F160W", overrides: dict | None = None) -> tuple[ModelVersion, bool]:
    """The ready fit version for ``band`` with these method settings (oversampling, iterations,
    sky), or a new one, checked on bright mocks first (the check is stored as its metrics).
    The band's pixel scale, PSF and zero point come from each survey at run time. Returns
    (version, created)."""
    from mlworker.ml.sersic_fit import FitSettings

    known = {"oversample", "centre_oversample", "centre_box_px", "max_iterations", "subtract_border_sky"}
    unknown = set(overrides or {}) - known
    if unknown:
        raise ApplicationError(f"unknown fit settings {sorted(unknown)} (known: {sorted(known)})")
    settings = FitSettings(**(overrides or {}))
    method = {k: v for k, v in asdict(settings).items() if k in known}
    for version in ModelVersion.objects.filter(
        task=ModelTask.EMULATOR, variant=SERSIC_FIT_VARIANT, status=ModelVersion.Status.READY, band=band
    ).order_by("-number"):
        if {k: version.config.get(k) for k in known} == method:
            return version, False
    metrics = sersic_fit_self_check(settings=settings)
    if not math.isfinite(metrics["median_rel_dn_bright"]):
        raise ApplicationError("the Sersic fit failed on every bright mock of its self-check")
    with transaction.atomic():
        number = (
            ModelVersion.objects.select_for_update()
            .filter(task=ModelTask.EMULATOR, variant=SERSIC_FIT_VARIANT)
            .aggregate(n=Max("number"))["n"]
            or 0
        ) + 1
        version = ModelVersion.objects.create(
            task=ModelTask.EMULATOR,
            variant=SERSIC_FIT_VARIANT,
            number=number,
            status=ModelVersion.Status.READY,
            primary_metric="median_rel_dn_bright",
            primary_value=metrics["median_rel_dn_bright"],
            higher_is_better=False,
            metrics=metrics,
            config={**method, "method": "astropy Sersic2D, PSF-convolved, TRF least squares"},
            band=band,
            device="cpu",
        )
    return version, True
