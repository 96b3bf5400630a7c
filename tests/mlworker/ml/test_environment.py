"""Environment measures on hand-made configurations, the metrics, SORT and the network's
neighbourhood features."""

import numpy as np

from mlworker.ml.environment import (
    Catalog,
    comoving_distance,
    cylinder_counts,
    densest,
    sigma_n,
    spearman,
    tangent_plane,
    xi_s,
)
from mlworker.ml.environment_learned import DT_BINS, RADII_MPC, neighbourhood_features
from mlworker.ml.sort import SortConfig, sort_redshifts


def ring(z_centre: float, radius_mpc: float, n: int, dz: np.ndarray | None = None):
    """A galaxy at the origin and ``n`` others on a ring of projected comoving ``radius_mpc``."""
    d = comoving_distance(z_centre)
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    u = np.r_[0.0, radius_mpc / d * np.cos(theta)]
    v = np.r_[0.0, radius_mpc / d * np.sin(theta)]
    z = np.full(n + 1, z_centre) + (np.r_[0.0, dz] if dz is not None else 0.0)
    return u, v, z


def test_sigma_n_is_n_over_the_area_within_the_nth_neighbour():
    u, v, z = ring(0.8, 2.0, 12)
    sig = sigma_n(u, v, z, half_width=0.01, ns=(5, 10))
    assert np.isclose(sig[5][0], 5 / (np.pi * 2.0**2), rtol=1e-3)
    assert np.isclose(sig[10][0], 10 / (np.pi * 2.0**2), rtol=1e-3)
    # neighbours outside the slice do not count: half the ring moved far behind
    dz = np.where(np.arange(12) % 2 == 0, 0.0, 0.2)
    u, v, z = ring(0.8, 2.0, 12, dz)
    sig = sigma_n(u, v, z, half_width=0.01, ns=(5,))
    assert np.isclose(sig[5][0], 5 / (np.pi * 2.0**2), rtol=1e-3)  # 6 left in the slice
    assert np.isnan(sigma_n(u, v, z, half_width=0.01, ns=(10,))[10][0])  # fewer than 10 in the slice


def test_cylinder_counts():
    u, v, z = ring(0.8, 0.8, 10)
    assert cylinder_counts(u, v, z, half_width=0.01, radius=1.0)[0] == 10
    assert cylinder_counts(u, v, z, half_width=0.01, radius=0.5)[0] == 0


def test_metrics():
    truth = np.arange(1000.0)
    assert spearman(truth, truth**3) == 1.0
    assert densest(truth, truth) == {"completeness": 1.0, "purity": 1.0}
    assert densest(-truth, truth)["completeness"] == 0.0


def test_xi_of_identical_redshifts_has_ratio_one_and_of_poisson_points_zero():
    rng = np.random.default_rng(1)
    n = 20_000
    ra, dec = rng.uniform(149, 151, n), rng.uniform(1.2, 3.2, n)
    z = np.interp(rng.random(n) ** (1 / 3), [0, 1], [0.4, 1.2])
    xi = xi_s(ra, dec, {"truth": z, "same": z.copy()}, n_patches=8)
    assert np.allclose(xi["same"]["ratio"], 1.0) and np.isclose(xi["same"]["mean_ratio"], 1.0)
    assert np.all(np.abs(np.asarray(xi["truth"]["xi"])[2:]) < 0.3)


def test_sort_keeps_spectra_and_pulls_photometric_galaxies_onto_structures():
    """Galaxies in two walls at z = 0.80 and 0.86; 20% have spectra; photo-z scatter 0.03 (1+z)."""
    rng = np.random.default_rng(2)
    n = 6000
    ra, dec = rng.uniform(149, 150, n), rng.uniform(2, 3, n)
    z_true = np.where(rng.random(n) < 0.5, 0.80, 0.86) + rng.normal(0, 0.001, n)
    z_phot = z_true + rng.normal(0, 0.03, n) * (1 + z_true)
    spec = rng.random(n) < 0.2
    catalog = Catalog(ra, dec, z_phot, 0.03 * (1 + z_phot), np.where(spec, z_true, np.nan), np.full(n, 22.0))
    z_sort, err = sort_redshifts(catalog, SortConfig(cell_mpc=5.0, min_spec_per_cell=10))
    assert np.array_equal(z_sort[spec], z_true[spec]) and np.all(err[spec] == 0)

    def near_a_wall(z):
        return np.mean(np.minimum(np.abs(z - 0.80), np.abs(z - 0.86)) < 0.01)

    assert near_a_wall(z_sort[~spec]) > 0.8 > 0.4 > near_a_wall(z_phot[~spec])
    assert np.all(np.isfinite(z_sort)) and np.all(err[~spec] >= 0)


def test_neighbourhood_features_count_neighbours_by_distance_and_redshift():
    u, v, z = ring(0.8, 0.3, 6)
    d = comoving_distance(0.8)
    ra0, dec0 = 150.0, 2.0
    dec = dec0 + np.degrees(v)
    ra = ra0 + np.degrees(u) / np.cos(np.radians(dec0))
    spec = np.r_[np.nan, 0.8, 0.8, np.nan, np.nan, np.nan, np.nan]
    catalog = Catalog(ra, dec, z, np.full(7, 0.03 * 1.8), spec, np.full(7, 23.0))
    uu, vv = tangent_plane(ra, dec)
    assert np.allclose(np.hypot(uu[1:] - uu[0], vv[1:] - vv[0]) * d, 0.3, rtol=0.02)
    features = neighbourhood_features(catalog, sigma_t=0.03)
    hist = features[0, 4:].reshape(2, len(RADII_MPC) - 1, DT_BINS)
    counts = np.expm1(hist)
    assert np.isclose(counts[1, 0].sum(), 2) and np.isclose(counts[0, 0].sum(), 4)  # 2 with spectra, 4 without
    assert np.isclose(counts[:, 1:].sum(), 0)  # all within 0.5 h^-1 Mpc
