"""Galaxy environment from redshifts (no Django): the geometry, local density measures in
redshift slices, the metrics that compare methods, and the redshift-space two-point
correlation function.

Redshifts are handled as t = ln(1 + z), in which a photometric error sigma_z = s (1 + z) is the
constant s: a redshift slice of half-width w in t is +-w (1 + z) in z. Projected separations
are comoving (h^-1 Mpc): the angular separation on the tangent plane of the patch times the
comoving distance of the galaxy at the slice's centre. Densities are turned into overdensities
by dividing by the median of the same measure in redshift bins of 0.05 (log10 delta).
"""

from dataclasses import dataclass

import numpy as np

SIGMA_N = (5, 10)
CYLINDER_RADIUS = 1.0  # h^-1 Mpc
Z_BIN = 0.05  # redshift bins for the overdensity normalisation


# ---- geometry ---------------------------------------------------------------------------------
def _distance_table():
    from astropy.cosmology import Planck18

    zs = np.linspace(0.0, 4.0, 4001)
    return zs, Planck18.comoving_distance(zs).value * Planck18.h


_TABLE = None


def comoving_distance(z) -> np.ndarray:
    """Planck18 comoving distance in h^-1 Mpc (0 <= z <= 4, interpolated)."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _distance_table()
    zs, dc = _TABLE
    return np.interp(z, zs, dc)


def redshift_of_distance(d) -> np.ndarray:
    global _TABLE
    if _TABLE is None:
        _TABLE = _distance_table()
    zs, dc = _TABLE
    return np.interp(d, dc, zs)


def tangent_plane(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic coordinates (radians) about the patch's mean position."""
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    ra0 = np.arctan2(np.sin(ra_r).mean(), np.cos(ra_r).mean())
    dec0 = np.arcsin(np.clip(np.sin(dec_r).mean(), -1, 1))
    cos_c = np.sin(dec0) * np.sin(dec_r) + np.cos(dec0) * np.cos(dec_r) * np.cos(ra_r - ra0)
    u = np.cos(dec_r) * np.sin(ra_r - ra0) / cos_c
    v = (np.cos(dec0) * np.sin(dec_r) - np.sin(dec0) * np.cos(dec_r) * np.cos(ra_r - ra0)) / cos_c
    return u, v


@dataclass
class Catalog:
    """What the estimators read of a survey's galaxies (arrays of length n)."""

    ra: np.ndarray
    dec: np.ndarray
    z_phot: np.ndarray
    z_phot_err: np.ndarray
    z_spec: np.ndarray  # NaN without a spectrum
    mag: np.ndarray

    def __len__(self) -> int:
        return self.ra.size

    @property
    def has_spec(self) -> np.ndarray:
        return np.isfinite(self.z_spec)

    @property
    def z_best(self) -> np.ndarray:
        """The spectroscopic redshift where measured, else the photometric one."""
        return np.where(self.has_spec, self.z_spec, self.z_phot)

    @property
    def sigma_t(self) -> np.ndarray:
        """Photometric error in t = ln(1 + z)."""
        err = np.where(np.isfinite(self.z_phot_err) & (self.z_phot_err > 0), self.z_phot_err, 0.03 * (1 + self.z_phot))
        return err / (1 + self.z_phot)


# ---- densities -------------------------------------------------------------------------------
def _slices(t: np.ndarray, width: float):
    """Yields (members of slice k, candidates of slices k-1..k+1) index arrays."""
    edges = np.floor(t / width).astype(np.int64)
    order = np.argsort(edges, kind="stable")
    keys = edges[order]
    unique, starts = np.unique(keys, return_index=True)
    stops = np.append(starts[1:], len(keys))
    position = {int(k): i for i, k in enumerate(unique)}
    for i, k in enumerate(unique):
        members = order[starts[i] : stops[i]]
        parts = [order[starts[position[j]] : stops[position[j]]] for j in (k - 1, k, k + 1) if int(j) in position]
        yield members, np.concatenate(parts)


def sigma_n(
    u: np.ndarray, v: np.ndarray, z: np.ndarray, half_width: float, ns: tuple[int, ...] = SIGMA_N
) -> dict[int, np.ndarray]:
    """Sigma_N = N / (pi d_N^2) (h^2 Mpc^-2) for each N: d_N is the projected comoving distance
    to the N-th nearest other galaxy within |t_j - t_i| <= ``half_width`` (t = ln(1 + z))."""
    from scipy.spatial import cKDTree

    t = np.log1p(z)
    dc = comoving_distance(z)
    n_max = max(ns)
    out = {n: np.full(len(z), np.nan) for n in ns}
    for members, candidates in _slices(t, half_width):
        if len(candidates) <= 1:
            continue
        tree = cKDTree(np.column_stack([u[candidates], v[candidates]]))
        todo = members
        k = min(len(candidates), 4 * n_max + 8)
        while len(todo):
            dist, idx = tree.query(np.column_stack([u[todo], v[todo]]), k=k)
            dist, idx = np.atleast_2d(dist), np.atleast_2d(idx)
            valid = idx < len(candidates)
            neighbour = candidates[np.where(valid, idx, 0)]
            valid &= (neighbour != todo[:, None]) & (np.abs(t[neighbour] - t[todo][:, None]) <= half_width)
            rank = np.cumsum(valid, axis=1)
            done = rank[:, -1] >= n_max
            if k >= len(candidates):
                done[:] = True
            for n in ns:
                hit = valid & (rank == n)
                found = hit.any(axis=1)
                d = np.where(found, dist[np.arange(len(todo)), hit.argmax(axis=1)], np.nan)
                sel = done
                radius = d[sel] * dc[todo[sel]]
                out[n][todo[sel]] = n / (np.pi * np.maximum(radius, 1e-3) ** 2)
            todo = todo[~done]
            k = min(len(candidates), 4 * k)
    return out


def cylinder_counts(
    u: np.ndarray, v: np.ndarray, z: np.ndarray, half_width: float, radius: float = CYLINDER_RADIUS
) -> np.ndarray:
    """Other galaxies within ``radius`` (projected comoving, h^-1 Mpc) and |t_j - t_i| <= half_width."""
    from scipy.spatial import cKDTree

    t = np.log1p(z)
    dc = comoving_distance(z)
    counts = np.zeros(len(z), dtype=np.int64)
    for members, candidates in _slices(t, half_width):
        tree = cKDTree(np.column_stack([u[candidates], v[candidates]]))
        for start in range(0, len(members), 20_000):
            chunk = members[start : start + 20_000]
            lists = tree.query_ball_point(np.column_stack([u[chunk], v[chunk]]), r=radius / dc[chunk])
            lengths = np.fromiter((len(a) for a in lists), dtype=np.int64, count=len(chunk))
            if not lengths.sum():
                continue
            flat = candidates[np.concatenate([np.asarray(a, dtype=np.int64) for a in lists if len(a)])]
            owner = np.repeat(np.arange(len(chunk)), lengths)
            keep = (flat != chunk[owner]) & (np.abs(t[flat] - t[chunk][owner]) <= half_width)
            counts[chunk] = np.bincount(owner[keep], minlength=len(chunk))
    return counts


def log_overdensity(density: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log10 of a density measure over its median in redshift bins of Z_BIN."""
    out = np.full(len(density), np.nan)
    logd = np.log10(np.where(density > 0, density, np.nan))
    bins = np.floor(z / Z_BIN).astype(np.int64)
    for b in np.unique(bins):
        sel = (bins == b) & np.isfinite(logd)
        if sel.sum() >= 5:
            out[sel] = logd[sel] - np.median(logd[sel])
    return out


def densities(ra, dec, z: np.ndarray, half_width: float) -> dict[str, np.ndarray]:
    """Every density measure for one set of redshifts: log Sigma_5, log Sigma_10, counts in
    cylinders of 1 h^-1 Mpc, and their log overdensities."""
    u, v = tangent_plane(np.asarray(ra), np.asarray(dec))
    sig = sigma_n(u, v, z, half_width)
    cyl = cylinder_counts(u, v, z, half_width)
    out = {}
    for n, values in sig.items():
        out[f"log_sigma{n}"] = np.log10(values)
        out[f"log_delta{n}"] = log_overdensity(values, z)
    out["n_cylinder"] = cyl.astype(float)
    out["log_delta_cylinder"] = log_overdensity(cyl + 0.5, z)
    return out


# ---- metrics ---------------------------------------------------------------------------------
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else float("nan")


def densest(estimate: np.ndarray, truth: np.ndarray, fraction: float = 0.1) -> dict:
    """Completeness and purity of the densest ``fraction``: how many of the truly densest the
    estimate's densest contain, and how many of the estimate's densest truly are."""
    ok = np.isfinite(estimate) & np.isfinite(truth)
    e, t = estimate[ok], truth[ok]
    true_top = t >= np.quantile(t, 1 - fraction)
    est_top = e >= np.quantile(e, 1 - fraction)
    both = (true_top & est_top).sum()
    return {"completeness": float(both / max(true_top.sum(), 1)), "purity": float(both / max(est_top.sum(), 1))}


# ---- clustering ------------------------------------------------------------------------------
XI_BINS = {"min_sep": 2.0, "max_sep": 40.0, "nbins": 10}
XI_RATIO_RANGE = (4.0, 30.0)


RANDOM_SMOOTHING_MPC = 100.0


def smooth_redshift_draws(z: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` redshifts from the distribution of ``z`` smoothed by a Gaussian of
    RANDOM_SMOOTHING_MPC in comoving distance."""
    d = comoving_distance(z)
    draws = rng.choice(d, size=m, replace=True) + rng.normal(0, RANDOM_SMOOTHING_MPC, m)
    lo, hi = d.min(), d.max()
    draws = np.where(draws < lo, 2 * lo - draws, draws)  # reflect at the edges of the cone
    draws = np.where(draws > hi, 2 * hi - draws, draws)
    return redshift_of_distance(np.clip(draws, lo, hi))


def xi_s(ra, dec, z_sets: dict[str, np.ndarray], seed: int = 0, n_patches: int = 16, randoms: int = 3) -> dict:
    """The redshift-space two-point correlation function xi(s) (Landy-Szalay, treecorr) of the
    same galaxies placed at each set of redshifts, with jackknife errors over ``n_patches``
    patches of the sky, and each set's ratio to the first ("truth") with its jackknife error.
    Randoms: uniform on the patch's sky, their redshifts drawn from the set's own distribution
    smoothed over RANDOM_SMOOTHING_MPC (so each set's radial selection is its own, without
    the line-of-sight structures a narrow patch's n(z) carries)."""
    import treecorr

    rng = np.random.default_rng([seed, 99])
    ra, dec = np.asarray(ra), np.asarray(dec)
    n = len(ra)
    # randoms uniform over the patch (in sin dec and ra), trimmed to the data's footprint
    lo_ra, hi_ra = np.percentile(ra, [0, 100])
    lo_dec, hi_dec = np.percentile(dec, [0, 100])
    m = randoms * n
    r_ra = rng.uniform(lo_ra, hi_ra, m)
    r_dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(lo_dec)), np.sin(np.radians(hi_dec)), m)))
    patch_cat = treecorr.Catalog(ra=ra, dec=dec, ra_units="deg", dec_units="deg", npatch=n_patches, rng=rng)
    centers = patch_cat.patch_centers
    results, correlations = {}, {}
    for name, z in z_sets.items():
        ok = np.isfinite(z)
        d = comoving_distance(z[ok])
        data = treecorr.Catalog(ra=ra[ok], dec=dec[ok], r=d, ra_units="deg", dec_units="deg", patch_centers=centers)
        rz = smooth_redshift_draws(z[ok], m, np.random.default_rng([seed, 7]))  # same stream for every set
        rand = treecorr.Catalog(
            ra=r_ra, dec=r_dec, r=comoving_distance(rz), ra_units="deg", dec_units="deg", patch_centers=centers
        )
        options = {**XI_BINS, "var_method": "jackknife", "cross_patch_weight": "match"}
        dd, dr, rr = (treecorr.NNCorrelation(**options) for _ in range(3))
        dd.process(data)
        rr.process(rand)
        dr.process(data, rand)
        dd.calculateXi(rr=rr, dr=dr)
        correlations[name] = dd
        results[name] = {
            "s": np.exp(dd.meanlogr).tolist(),
            "xi": dd.xi.tolist(),
            "xi_err": np.sqrt(dd.varxi).tolist(),
        }
    names = list(z_sets)
    truth = correlations[names[0]]
    for name in names[1:]:
        cov = treecorr.estimate_multi_cov(
            [correlations[name], truth], "jackknife", func=lambda corrs: corrs[0].xi / corrs[1].xi
        )
        ratio = correlations[name].xi / truth.xi
        err = np.sqrt(np.diag(cov))
        s = np.asarray(results[name]["s"])
        sel = (s >= XI_RATIO_RANGE[0]) & (s <= XI_RATIO_RANGE[1])
        results[name]["ratio"] = ratio.tolist()
        results[name]["ratio_err"] = err.tolist()
        results[name]["mean_ratio"] = float(np.mean(ratio[sel]))
        results[name]["within_2_sigma"] = bool(np.all(np.abs(ratio[sel] - 1) <= 2 * err[sel]))
    return results


# ---- the methods -----------------------------------------------------------------------------
HALF_WIDTH = {"photoz": 0.045, "sort": 0.02}  # redshift-slice half-widths in t = ln(1 + z)


def estimate(method: str, catalog: Catalog, sort_config=None, renew=None) -> dict[str, np.ndarray]:
    """The redshifts a method places every galaxy at, and the density measures from them:
    "photoz" (the spectroscopic redshift where measured, else the photometric one) or "sort"."""
    if method == "photoz":
        z = catalog.z_best
        z_err = np.where(catalog.has_spec, 0.0, catalog.sigma_t * (1 + catalog.z_phot))
    elif method == "sort":
        from mlworker.ml.sort import sort_redshifts

        z, z_err = sort_redshifts(catalog, sort_config, renew=renew)
    else:
        raise ValueError(f"unknown environment method {method!r}")
    return {"z": z, "z_err": z_err, **densities(catalog.ra, catalog.dec, z, HALF_WIDTH[method])}


def method_metrics(estimated: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict:
    """Spearman correlations of each density measure with the true log delta_5, and the
    completeness and purity of the densest 10% by log delta_5."""
    target = truth["log_delta5"]
    return {
        "spearman": {
            k: spearman(estimated[k], target)
            for k in ("log_delta5", "log_delta10", "log_delta_cylinder")
            if k in estimated
        },
        "densest_10": densest(estimated["log_delta5"], target),
    }
