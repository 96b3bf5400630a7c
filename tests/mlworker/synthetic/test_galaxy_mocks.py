"""The galaxy mocks obey the physics and the distributions the README promises."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from mlworker.synthetic.galaxies import CLASS_FRACTIONS, CLASSES, GalaxyMockConfig, Renderer, draw_parameters


def test_summed_flux_matches_magnitude_within_5_percent():
    cfg = GalaxyMockConfig(noise=False)
    params = draw_parameters(cfg, 120, seed=1)
    renderer = Renderer(cfg)
    for i in range(len(params)):
        clean, _ = renderer.render(params, i, seed=1)
        expected = 10 ** (-0.4 * (params.mag[i] - cfg.zero_point_ab))
        assert clean.sum() == pytest.approx(expected, rel=0.05), params.true_class[i]


def test_background_noise_matches_stated_depth():
    cfg = GalaxyMockConfig()
    params = draw_parameters(cfg, 30, seed=2)
    renderer = Renderer(cfg)
    residuals = []
    for i in range(len(params)):
        clean, observed = renderer.render(params, i, seed=2)
        faint = clean < 1e-5  # pixels with no source light
        residuals.append((observed - clean)[faint])
    assert np.std(np.concatenate(residuals)) == pytest.approx(cfg.background_sigma, rel=0.03)


def test_distributions():
    cfg = GalaxyMockConfig()
    p = draw_parameters(cfg, 200_000, seed=3)
    fractions = np.array([(p.true_class == c).mean() for c in CLASSES])
    np.testing.assert_allclose(fractions, CLASS_FRACTIONS, atol=0.005)
    assert p.mag.min() >= 19.5 and p.mag.max() <= 25.0
    spheroid, disk = p.true_class == "spheroid", p.true_class == "disk"
    assert p.sersic_n[spheroid].min() >= 2.5 and p.sersic_n[spheroid].max() <= 6.0
    assert p.sersic_n[disk].min() >= 0.5 and p.sersic_n[disk].max() <= 1.5
    bd = p.true_class == "bulge_disk"
    assert p.bt[bd].min() > 0.19 and p.bt[bd].max() < 0.81 and abs(np.mean(p.bt[bd]) - 0.5) < 0.01
    # Counts rise towards faint magnitudes (dN/dm ~ 10^(0.25 m)) outside the faint class.
    regular = p.true_class != "unclassifiable"
    bright = (regular & (p.mag >= 19.5) & (p.mag < 20.5)).sum() / 1.0  # per magnitude
    faint = (regular & (p.mag >= 23.0) & (p.mag < 24.0)).sum() / 1.0
    assert faint / bright == pytest.approx(10 ** (0.25 * 3.5), rel=0.08)


def test_written_mock_files(mock_galaxies):
    truth = Table.read(mock_galaxies / "truth.csv")
    catalog = Table.read(mock_galaxies / "catalog.csv")
    assert len(truth) == len(catalog) == 40
    single = np.isin(truth["true_class"], ["spheroid", "disk"])
    np.testing.assert_allclose(
        truth["r_e_maj_arcsec"][single], truth["r_e_circ_arcsec"][single] / np.sqrt(truth["q"][single])
    )
    header = fits.getheader(mock_galaxies / "cutouts" / f"{catalog['id'][0]}.fits")
    assert header["FILTER"] == "F160W" and header["PSF_FWHM"] == 0.18 and header["MAGZERO"] == 25.95
    assert header["CD2_2"] * 3600 == pytest.approx(0.06)
