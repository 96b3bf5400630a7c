"""A clustered mock galaxy catalog over a survey patch, with known true positions (no Django).

The contract (README, "Galaxy environment"):
- a lognormal galaxy density field whose real-space correlation function is
  xi(r) = (r / 5 h^-1 Mpc)^-1.8 exp(-(r / 50 h^-1 Mpc)^2), on a comoving grid (cells of
  ``cell`` h^-1 Mpc) that covers the light cone of a square patch between ``z_min`` and
  ``z_max``; Planck18 distances; no evolution along the cone;
- galaxies Poisson-sampled from (1 + delta) at a constant comoving density, placed uniformly in
  their cells;
- line-of-sight peculiar velocities from linear theory (v = f a H grad^-1 delta_m, galaxy bias
  ``bias``, growth rate f = Omega_m(z)^0.55, the field smoothed over 4 h^-1 Mpc), so that
  redshift space is defined:
  z_obs = z_cos + (1 + z_cos) v_los / c;
- absolute magnitudes from a Schechter function (M* = -21.5, alpha = -1.2), apparent ones
  from the distance modulus; photometric redshifts for all: z_obs + N(0, 0.03 (1 + z)) with
  3% outliers uniform over the catalog's range; spectroscopic redshifts (z_obs with 30 km/s
  errors) for the brightest ``spec_fraction``.
- the truth beside the catalog: true (cosmological) and redshift-space redshifts, comoving
  positions, the density field at each galaxy, and the environment measures computed from the
  redshift-space redshifts of every galaxy (as a complete spectroscopic survey would).
"""

from dataclasses import dataclass

import numpy as np

C_KMS = 299_792.458
R0, GAMMA, R_CUT = 5.0, 1.8, 50.0  # xi(r) = (r / R0)^-GAMMA exp(-(r / R_CUT)^2), h^-1 Mpc
VELOCITY_SMOOTHING = 4.0  # h^-1 Mpc


def xi_target(r: np.ndarray) -> np.ndarray:
    """The galaxy correlation function the lognormal field is built to have (real space)."""
    r = np.asarray(r, dtype=float)
    return (np.maximum(r, 1e-3) / R0) ** -GAMMA * np.exp(-((r / R_CUT) ** 2))


@dataclass(frozen=True)
class LightconeConfig:
    n_galaxies: int = 100_000
    side_deg: float = 2.0  # the patch is side_deg x side_deg, centred on (ra0, dec0)
    ra0: float = 150.1  # COSMOS
    dec0: float = 2.2
    z_min: float = 0.4
    z_max: float = 1.2
    cell: float = 2.0  # grid cell, h^-1 Mpc
    bias: float = 1.5
    photo_z_sigma: float = 0.03  # x (1 + z)
    outlier_fraction: float = 0.03
    spec_fraction: float = 0.10
    spec_z_error_kms: float = 30.0


@dataclass
class Lightcone:
    """Columns for every galaxy (arrays of length n)."""

    source_id: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    z_true: np.ndarray  # cosmological
    z_obs: np.ndarray  # redshift space: what a perfect spectrograph measures
    z_phot: np.ndarray
    z_phot_err: np.ndarray
    z_spec: np.ndarray  # NaN without a spectrum
    mag: np.ndarray
    delta: np.ndarray  # galaxy overdensity of the field at the galaxy's cell
    x: np.ndarray  # comoving position, h^-1 Mpc (x, y transverse at the patch centre, z along it)
    y: np.ndarray
    z: np.ndarray

    def __len__(self) -> int:
        return self.ra.size


def _distances():
    from astropy.cosmology import Planck18

    h = Planck18.h
    zs = np.linspace(0.0, 3.0, 3001)
    dc = Planck18.comoving_distance(zs).value * h  # h^-1 Mpc
    return Planck18, h, zs, dc


def comoving_distance(z: np.ndarray) -> np.ndarray:
    """Planck18 line-of-sight comoving distance in h^-1 Mpc (interpolated, 0 <= z <= 3)."""
    _, _, zs, dc = _distances()
    return np.interp(z, zs, dc)


def redshift_of_distance(d: np.ndarray) -> np.ndarray:
    _, _, zs, dc = _distances()
    return np.interp(d, dc, zs)


def gaussian_power(k: np.ndarray) -> np.ndarray:
    """P_G(k) of the Gaussian field G whose exp(G - sigma^2/2) - 1 has xi_target: the Fourier
    transform of ln(1 + xi) (negative values, where the lognormal cannot be exact, set to 0)."""
    r = np.linspace(1e-3, 400.0, 40_000)
    dr = r[1] - r[0]
    xi_g = np.log1p(xi_target(r))
    kr = np.outer(k, r)
    power = 4 * np.pi * (xi_g * r**2 * np.sinc(kr / np.pi)).sum(axis=1) * dr
    return np.clip(power, 0.0, None)


def _grid_fields(cfg: LightconeConfig, shape: tuple[int, int, int], rng: np.random.Generator):
    """(delta_g, psi_los): the lognormal galaxy overdensity on the grid and the line-of-sight
    linear displacement (h^-1 Mpc) of the matter field delta_m = G / bias (psi = i k / k^2
    delta_m: a galaxy in front of an overdensity moves away from us, towards it)."""
    nx, ny, nz = shape
    kx = 2 * np.pi * np.fft.fftfreq(nx, d=cfg.cell)
    ky = 2 * np.pi * np.fft.fftfreq(ny, d=cfg.cell)
    kz = 2 * np.pi * np.fft.rfftfreq(nz, d=cfg.cell)
    kk = np.sqrt(kx[:, None, None] ** 2 + ky[None, :, None] ** 2 + kz[None, None, :] ** 2).astype(np.float32)
    k_grid = np.geomspace(1e-3, float(kk.max()) * 1.01, 600)
    power = np.interp(kk, k_grid, gaussian_power(k_grid)).astype(np.float32)
    # white noise has <|W_k|^2> = N; the discrete field with power P has <|G_k|^2> = N P / dV
    g_k = np.fft.rfftn(rng.standard_normal(shape, dtype=np.float32)) * np.sqrt(power / cfg.cell**3)
    g_k[0, 0, 0] = 0.0
    g = np.fft.irfftn(g_k, s=shape, axes=(0, 1, 2)).astype(np.float32)
    # linear theory holds on large scales: the velocities come from G smoothed over
    # VELOCITY_SMOOTHING h^-1 Mpc (a Gaussian), not from its cell-scale fluctuations
    smooth = np.exp(-0.5 * (kk * VELOCITY_SMOOTHING) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        psi_k = np.where(kk > 0, 1j * kz[None, None, :] / kk**2, 0.0) * g_k * smooth / cfg.bias
    psi = np.fft.irfftn(psi_k, s=shape, axes=(0, 1, 2)).astype(np.float32)
    delta = np.exp(g - float(g.var()) / 2) - 1
    return delta, psi


def make_lightcone(cfg: LightconeConfig, seed: int) -> Lightcone:
    """Draws the catalog (fixed by ``seed``); about ``cfg.n_galaxies`` galaxies."""
    cosmo, h, _, _ = _distances()
    rng = np.random.default_rng([seed, 2018])
    d_min, d_max = comoving_distance(np.array([cfg.z_min, cfg.z_max]))
    half = np.radians(cfg.side_deg / 2)
    width = 2 * d_max * np.tan(half) + 2 * cfg.cell
    depth = d_max - d_min + 2 * cfg.cell
    shape = (int(np.ceil(width / cfg.cell)), int(np.ceil(width / cfg.cell)), int(np.ceil(depth / cfg.cell)))
    delta, psi = _grid_fields(cfg, shape, rng)
    # Galaxies in the cone: Poisson counts from (1 + delta) at a density giving n_galaxies.
    cone_volume = (2 * np.tan(half)) ** 2 * (d_max**3 - d_min**3) / 3
    density = cfg.n_galaxies / cone_volume
    counts = rng.poisson(np.clip(1 + delta, 0, None) * density * cfg.cell**3)
    cells = np.flatnonzero(counts)
    per_cell = counts.ravel()[cells]
    idx = np.repeat(cells, per_cell)
    ix, iy, iz = np.unravel_index(idx, shape)
    x = (ix + rng.random(idx.size)) * cfg.cell - width / 2
    y = (iy + rng.random(idx.size)) * cfg.cell - width / 2
    z = (iz + rng.random(idx.size)) * cfg.cell - cfg.cell + d_min
    # In the cone (flat-sky around the patch centre: tangent-plane angles x/z, y/z).
    inside = (z > d_min) & (z < d_max) & (np.abs(x) < z * np.tan(half)) & (np.abs(y) < z * np.tan(half))
    x, y, z, idx = x[inside], y[inside], z[inside], idx[inside]
    n = x.size
    z_true = redshift_of_distance(z)
    omega_m = cosmo.Om(z_true)
    growth_rate = omega_m**0.55
    hubble = 100.0 * cosmo.efunc(z_true)  # h km/s/Mpc
    v_los = growth_rate * hubble / (1 + z_true) * psi.ravel()[idx]  # km/s
    z_obs = z_true + (1 + z_true) * v_los / C_KMS
    dec = cfg.dec0 + np.degrees(np.arctan(y / z))
    ra = (cfg.ra0 + np.degrees(np.arctan(x / z)) / np.cos(np.radians(dec))) % 360.0
    # Luminosities: Schechter (M* = -21.5, alpha = -1.2) above M = -17, by rejection.
    m_abs = _schechter(rng, n, m_star=-21.5, alpha=-1.2, m_faint=-17.0)
    distance_modulus = cosmo.distmod(z_true).value
    mag = m_abs + distance_modulus
    sigma = cfg.photo_z_sigma * (1 + z_obs)
    z_phot = z_obs + rng.normal(0, 1, n) * sigma
    outlier = rng.random(n) < cfg.outlier_fraction
    z_phot[outlier] = rng.uniform(max(cfg.z_min - 0.3, 0.01), cfg.z_max + 0.3, outlier.sum())
    z_phot = np.clip(z_phot, 0.01, None)
    spec_limit = np.quantile(mag, cfg.spec_fraction)
    z_spec = np.where(mag <= spec_limit, z_obs + (1 + z_obs) * rng.normal(0, cfg.spec_z_error_kms, n) / C_KMS, np.nan)
    width_digits = max(6, len(str(n)))
    ids = np.char.add("LC-", np.char.zfill(np.arange(1, n + 1).astype(str), width_digits))
    return Lightcone(
        source_id=ids,
        ra=ra,
        dec=dec,
        z_true=z_true,
        z_obs=z_obs,
        z_phot=z_phot,
        z_phot_err=sigma,
        z_spec=z_spec,
        mag=mag,
        delta=delta.ravel()[idx].astype(float),
        x=x,
        y=y,
        z=z,
    )


def _schechter(rng: np.random.Generator, n: int, m_star: float, alpha: float, m_faint: float) -> np.ndarray:
    grid = np.linspace(m_star - 4.0, m_faint, 4000)
    x = 10 ** (-0.4 * (grid - m_star))
    pdf = x ** (alpha + 1) * np.exp(-x)
    cdf = np.cumsum(pdf)
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, grid)


TRUE_HALF_WIDTH = 0.0035  # the truth's redshift slice, in ln(1 + z): about +-1,000 km/s


def truth_environment(lc: Lightcone) -> dict[str, np.ndarray]:
    """The environment measures of every galaxy from its redshift-space redshift, as a
    complete spectroscopic survey would measure them (the truth the estimators aim at)."""
    from mlworker.ml.environment import densities

    return densities(lc.ra, lc.dec, lc.z_obs, TRUE_HALF_WIDTH)


def write_lightcone(outdir, cfg: LightconeConfig, seed: int) -> Lightcone:
    """Writes ``catalog.csv`` (what ``ingest_galaxies`` reads: id, ra, dec, mag, z_phot,
    z_phot_err, z_spec) and ``truth.csv`` (true and redshift-space redshifts, comoving
    position, field overdensity, true environment measures)."""
    from pathlib import Path

    from astropy.table import Table

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    lc = make_lightcone(cfg, seed)
    Table(
        {
            "id": lc.source_id,
            "ra": np.round(lc.ra, 7),
            "dec": np.round(lc.dec, 7),
            "mag": np.round(lc.mag, 3),
            "z_phot": np.round(lc.z_phot, 4),
            "z_phot_err": np.round(lc.z_phot_err, 4),
            "z_spec": np.round(lc.z_spec, 6),
        }
    ).write(out / "catalog.csv", format="ascii.csv", overwrite=True)
    truth = truth_environment(lc)
    Table(
        {
            "source_id": lc.source_id,
            "z_true": np.round(lc.z_true, 6),
            "z_obs": np.round(lc.z_obs, 6),
            "x_mpc_h": np.round(lc.x, 3),
            "y_mpc_h": np.round(lc.y, 3),
            "d_mpc_h": np.round(lc.z, 3),
            "delta": np.round(lc.delta, 4),
            **{f"true_{k}": np.round(v, 4) for k, v in truth.items()},
        }
    ).write(out / "truth.csv", format="ascii.csv", overwrite=True)
    return lc


EVALUATION_SEED = 9001  # the held-out light cone every environment method is measured on
EVALUATION_CONFIG = LightconeConfig(n_galaxies=100_000, side_deg=4.0)


def evaluation_lightcone(n_galaxies: int | None = None) -> tuple[Lightcone, dict[str, np.ndarray]]:
    """The held-out mock light cone and its true environment (no training ever sees it);
    ``n_galaxies`` (default 100,000) shrinks it for tests."""
    from dataclasses import replace

    config = EVALUATION_CONFIG if n_galaxies is None else replace(EVALUATION_CONFIG, n_galaxies=n_galaxies)
    lc = make_lightcone(config, EVALUATION_SEED)
    return lc, truth_environment(lc)
