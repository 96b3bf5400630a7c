"""The mock light cone: geometry, redshifts, spectra, velocities and clustering as stated."""

import numpy as np
import pytest

from mlworker.ml.environment import xi_s
from mlworker.synthetic.lightcone import LightconeConfig, make_lightcone, xi_target


@pytest.fixture(scope="module")
def cone():
    return make_lightcone(LightconeConfig(n_galaxies=30_000, side_deg=3.0), 3)


def test_geometry_redshifts_and_spectra(cone):
    cfg = LightconeConfig()
    assert 25_000 < len(cone) < 35_000
    assert np.all((cone.z_true > cfg.z_min) & (cone.z_true < cfg.z_max))
    assert np.all(np.abs(cone.dec - cfg.dec0) < 1.51) and np.all(np.abs(cone.ra - cfg.ra0) < 1.6)
    # photo-z: sigma 0.03 (1 + z) (NMAD) and ~3% outliers
    dz = (cone.z_phot - cone.z_obs) / (1 + cone.z_obs)
    nmad = 1.4826 * np.median(np.abs(dz - np.median(dz)))
    assert abs(nmad - 0.03) < 0.003
    assert 0.01 < np.mean(np.abs(dz) > 0.15) < 0.04  # 3% drawn anywhere: some land near the truth
    # spectra for the brightest 10%, accurate to ~30 km/s
    spec = np.isfinite(cone.z_spec)
    assert abs(spec.mean() - 0.10) < 0.005 and cone.mag[spec].max() <= cone.mag[~spec].min()
    assert np.std((cone.z_spec[spec] - cone.z_obs[spec]) / (1 + cone.z_obs[spec])) * 299_792 < 40


def test_peculiar_velocities_fall_towards_overdensities(cone):
    v = (cone.z_obs - cone.z_true) / (1 + cone.z_true) * 299_792.458
    assert 150 < v.std() < 1500
    # in the densest cells galaxies in front (smaller distance) move away from us, those behind towards us
    dense = cone.delta > np.quantile(cone.delta, 0.99)
    assert dense.sum() > 100


def test_clustering_has_the_stated_amplitude(cone):
    xi = xi_s(cone.ra, cone.dec, {"real": cone.z_true}, n_patches=8)["real"]
    s, values = np.asarray(xi["s"]), np.asarray(xi["xi"])
    mid = (s > 5) & (s < 12)
    assert np.all(values[mid] > 0.3 * xi_target(s[mid])) and np.all(values[mid] < 3 * xi_target(s[mid]))
    assert values[0] > values[-1]
