"""The reference Sersic fit: it recovers bright mocks, integrates the profile right, and
records failures as failures."""

import math

import numpy as np
from astropy.modeling.functional_models import Sersic2D

from mlworker.ml.sersic_fit import FitSettings, fit_sersic, sersic_total_flux
from mlworker.synthetic.structure import add_noise, render_clean
from tests.mlworker.synthetic.test_structure_mocks import one_galaxy

SETTINGS = FitSettings(exposure_time_s=3000.0)


def test_total_flux_formula_matches_the_integrated_profile():
    for n_index, q in ((0.7, 0.4), (1.0, 1.0), (4.0, 0.7)):
        r_eff = 3.0
        half = 600
        yy, xx = (np.mgrid[-half:half, -half:half] + 0.5) * 0.25  # cell centres: no sample on the cusp
        image = Sersic2D.evaluate(xx, yy, 1.0, r_eff, n_index, 0.0, 0.0, 1 - q, 0.3)
        numeric = image.sum() * 0.25**2
        assert abs(numeric / sersic_total_flux(1.0, r_eff, n_index, q) - 1) < 0.015  # n = 4 keeps ~1% beyond 50 r_e


def test_bright_mocks_are_recovered():
    for n_index, r_e, q, pa in ((1.0, 0.45, 0.55, 30.0), (3.5, 0.3, 0.8, 120.0)):
        p = one_galaxy(n_index, r_e, q, mag=20.0, pa=pa)
        image = add_noise(render_clean(p), 4)[0]
        fit = fit_sersic(image, SETTINGS)
        assert fit.ok, fit.message
        assert abs(fit.sersic_n / n_index - 1) < 0.08
        assert abs(math.log10(fit.r_e_arcsec / r_e)) < 0.03
        assert abs(fit.mag - 20.0) < 0.05 and abs(fit.q - q) < 0.03
        assert min(abs(fit.pa_deg - pa), 180 - abs(fit.pa_deg - pa)) < 3
        assert 0.7 < fit.chi2_nu < 1.3 and fit.errors["sersic_n"] > 0
        assert abs(fit.x0_px) < 0.3 and abs(fit.y0_px) < 0.3


def test_failures_are_recorded_not_returned_as_numbers():
    blank = fit_sersic(np.full((64, 64), np.nan), SETTINGS)
    assert not blank.ok and "finite" in blank.message and math.isnan(blank.mag)
    noise = add_noise(np.zeros((1, 64, 64), dtype=np.float32), 9)[0]
    fit = fit_sersic(noise, SETTINGS)
    if not fit.ok:
        assert fit.message
    d = fit.as_dict()
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in d.values())
