"""SORT, the Stochastic Order Redshift Technique (Tejos, Rodriguez-Puebla & Primack 2018), as
galaxylab runs it (no Django).

Galaxies with a spectroscopic redshift keep it. For the others, in t = ln(1 + z):

1. The line of sight is cut into bins of ``bin_sigma`` photometric sigmas, and for each bin
   the sky into square cells of at least ``cell_mpc`` h^-1 Mpc (comoving, at the catalog's
   median redshift), wide enough to hold ~``min_spec_per_cell`` spectroscopic galaxies within
   two sigmas of the bin: a bright spectroscopic sample thins out with redshift, and a cell
   with a handful of them would pile its photometric galaxies onto a handful of redshifts.
2. In each cell, the N photometric galaxies whose photo-z falls in a bin [t0, t1) are truly
   somewhere around it: where, the cell's spectroscopic galaxies say. Each spectroscopic
   galaxy s is weighted by the probability that a galaxy at its redshift scatters into the
   bin, Phi((t1 - t_s) / sigma) - Phi((t0 - t_s) / sigma), divided by the spectroscopic
   completeness at t_s (spec-z / all, over the whole catalog): the bright spectroscopic
   sample then stands for the whole population. N redshifts are drawn from that weighted
   distribution (each smoothed by a ``smoothing`` kernel), sorted, and given to the N
   galaxies in the order of their photo-z.
3. Steps 1-2 are repeated with the cell grid and the bin edges shifted (``repeats`` times);
   a galaxy's assignments form its redshift PDF: the SORT redshift is their median, its
   uncertainty their spread. A cell with no useful spectroscopic galaxy leaves the photo-z.

Every step is a sort or a grouping: O(n log n).
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr

from mlworker.ml.environment import Catalog, comoving_distance, tangent_plane


@dataclass
class SortConfig:
    cell_mpc: float = 5.0  # the smallest cell; cells grow where spectra are sparse
    min_spec_per_cell: int = 15  # spectroscopic galaxies a cell should hold within a bin's reach
    spacing_kernel: float = 0.0  # > 0: each draw's kernel widens to this fraction of the cell's spec spacing
    point: str = "median"  # the redshift given: "median" of the assignments, or "draw" (one of them at random)
    bin_sigma: float = 1.0
    repeats: int = 8
    smoothing: float = 0.0008  # in t: about 2 h^-1 Mpc at z ~ 1
    completeness_smoothing: float = 0.05  # in t, for the spectroscopic completeness
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def spectroscopic_completeness(
    t_all: np.ndarray, t_spec: np.ndarray, smoothing: float
) -> tuple[np.ndarray, np.ndarray]:
    """(grid, completeness): spec-z galaxies over all galaxies (by photo-z), both smoothed."""
    grid = np.linspace(min(t_all.min(), t_spec.min()) - 0.1, max(t_all.max(), t_spec.max()) + 0.1, 400)
    step = grid[1] - grid[0]

    def density(values):
        hist, _ = np.histogram(values, bins=np.append(grid - step / 2, grid[-1] + step / 2))
        kernel = np.exp(-0.5 * (np.arange(-40, 41) * step / smoothing) ** 2)
        return np.convolve(hist, kernel / kernel.sum(), mode="same")

    spec, everyone = density(t_spec), density(t_all)
    completeness = np.where(everyone > 0, spec / np.maximum(everyone, 1e-9), 0.0)
    return grid, np.clip(completeness, 1e-3, 1.0)


def sort_redshifts(catalog: Catalog, cfg: SortConfig | None = None, renew=None) -> tuple[np.ndarray, np.ndarray]:
    """(z_sort, z_sort_err) for every galaxy of the catalog (spectroscopic ones unchanged, error 0).
    ``renew`` is called between repeats (a worker renews its lease there)."""
    cfg = cfg or SortConfig()
    rng = np.random.default_rng([cfg.seed, 2018])
    n = len(catalog)
    has_spec = catalog.has_spec
    t_phot = np.log1p(catalog.z_phot)
    sigma = catalog.sigma_t
    t_spec_all = np.log1p(np.where(has_spec, catalog.z_spec, 0.0))
    u, v = tangent_plane(catalog.ra, catalog.dec)
    photo = np.flatnonzero(~has_spec)
    spec = np.flatnonzero(has_spec)
    if len(spec) == 0 or len(photo) == 0:
        return catalog.z_best.copy(), np.where(has_spec, 0.0, catalog.z_phot_err)
    grid, completeness = spectroscopic_completeness(t_phot, t_spec_all[spec], cfg.completeness_smoothing)
    bin_width = cfg.bin_sigma * np.median(sigma[photo])
    area = max(float((u.max() - u.min()) * (v.max() - v.min())), 1e-12)  # steradians
    min_cell = cfg.cell_mpc / comoving_distance(np.median(catalog.z_best))  # radians
    t_spec_sorted = np.sort(t_spec_all[spec])
    reach = 2.0 * np.median(sigma[photo])
    assignments = np.full((cfg.repeats, n), np.nan)
    for r in range(cfg.repeats):
        du, dv, dt = rng.random(3)
        bins = np.floor(t_phot[photo] / bin_width + dt).astype(np.int64)
        for k in np.unique(bins):
            in_bin = photo[bins == k]
            t0, t1 = (k - dt) * bin_width, (k + 1 - dt) * bin_width
            # cells wide enough to hold ~min_spec_per_cell spectroscopic galaxies within reach
            n_reach = np.searchsorted(t_spec_sorted, t1 + reach) - np.searchsorted(t_spec_sorted, t0 - reach)
            cell = max(min_cell, float(np.sqrt(cfg.min_spec_per_cell * area / max(n_reach, 1))))
            cu = np.floor(u / cell + du).astype(np.int64)
            cv = np.floor(v / cell + dv).astype(np.int64)
            cell_id = (cu - cu.min()) * (cv.max() - cv.min() + 2) + (cv - cv.min())
            near = spec[np.abs(t_spec_all[spec] - 0.5 * (t0 + t1)) <= 0.5 * (t1 - t0) + 4 * reach]
            s_order = near[np.argsort(cell_id[near], kind="stable")]
            s_cells = cell_id[s_order]
            p_order = in_bin[np.lexsort((t_phot[in_bin], cell_id[in_bin]))]
            p_cells = cell_id[p_order]
            starts = np.flatnonzero(np.r_[True, p_cells[1:] != p_cells[:-1]])
            stops = np.r_[starts[1:], len(p_order)]
            for a, b in zip(starts, stops, strict=True):
                members = p_order[a:b]  # in photo-z order
                lo = np.searchsorted(s_cells, p_cells[a])
                hi = np.searchsorted(s_cells, p_cells[a], side="right")
                if lo == hi:
                    continue
                chosen = s_order[lo:hi]
                t_s = t_spec_all[chosen]
                s_typ = float(np.median(sigma[members]))
                w = (ndtr((t1 - t_s) / s_typ) - ndtr((t0 - t_s) / s_typ)) / np.interp(t_s, grid, completeness)
                total = w.sum()
                if total <= 1e-6:
                    continue
                kernel = cfg.smoothing
                if cfg.spacing_kernel > 0:  # sparse references: spread each draw over the gap to its neighbours
                    kernel = max(kernel, cfg.spacing_kernel * (t1 - t0 + 4 * reach) / max(len(t_s), 1))
                draws = rng.choice(t_s, size=len(members), p=w / total) + rng.normal(0, kernel, len(members))
                assignments[r, members] = np.sort(draws)
        if renew is not None:
            renew()
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nanstd(assignments, axis=0)
            if cfg.point == "draw":  # a sample of each galaxy's SORT PDF
                pick = rng.integers(0, cfg.repeats, n)
                t_sort = assignments[pick, np.arange(n)]
                gaps = ~np.isfinite(t_sort)
                t_sort[gaps] = np.nanmedian(assignments[:, gaps], axis=0) if gaps.any() else t_sort[gaps]
            else:
                t_sort = np.nanmedian(assignments, axis=0)
    missing = ~np.isfinite(t_sort)
    t_sort[missing] = t_phot[missing]
    z_sort = np.expm1(t_sort)
    err = (1 + z_sort) * np.where(missing, sigma, spread)
    z_sort[has_spec] = catalog.z_spec[has_spec]
    err[has_spec] = 0.0
    return z_sort, err
