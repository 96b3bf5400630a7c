"""Galaxies of known structure for the GALFIT emulator and its reference fitter (no Django):
single Sersic profiles and de Vaucouleurs bulge + exponential disk systems, GalSim-rendered
with the survey mock's instrument (F160W-like: 0.06"/px, Moffat PSF FWHM 0.18", AB zero point
25.95, sky noise 0.0152 e-/s/px plus source Poisson noise for 3,000 s).

One set of conventions for truth, fitter and emulator (README, "GALFIT emulator"):
- r_e is the half-light radius along the MAJOR axis (GALFIT's and astropy ``Sersic2D``'s
  ``r_eff``); GalSim's ``half_light_radius`` of a sheared profile is circularised, so the
  profile is drawn with r_e sqrt(q);
- the magnitude is the total AB magnitude of the untruncated profile, and the profile is
  untruncated wherever the stamp sees it (GalSim truncates it only beyond the stamp's
  corners, which changes no pixel): the stamp cuts the galaxy as it would cut a real one;
- q = b/a, position angle in degrees counter-clockwise from the +x axis.

Kinds: "bulge" (single Sersic, n >= 2.5), "disk" (single, n <= 1.5), "intermediate"
(single, 1.5 < n < 2.5: neither) and "bulge_disk" (n = 4 bulge + n = 1 disk, B/T uniform
0.2-0.8).
"""

from dataclasses import dataclass, fields

import numpy as np

from mlworker.synthetic.galaxies import GalaxyMockConfig

KINDS = ("bulge", "disk", "intermediate", "bulge_disk")
N_RANGE = (0.5, 6.0)
N_STEP = 0.1  # n is quantised: GalSim builds a lookup table per (n, truncation ratio)
TRUNC_RATIOS = (6.0, 10.0, 16.0, 25.0, 40.0, 64.0)  # truncation radius / circularised r_e
STAMP_REACH_ARCSEC = 2.9  # beyond the corners of a 64 x 64 stamp at 0.06"/px, plus the PSF


@dataclass
class StructureParams:
    """Vectorised truth of n galaxies (NaN where a quantity does not apply)."""

    kind: np.ndarray
    mag: np.ndarray  # total AB magnitude
    sersic_n: np.ndarray  # single Sersic only
    r_e_arcsec: np.ndarray  # single Sersic: half-light radius along the major axis
    q: np.ndarray  # single Sersic axis ratio; bulge+disk: the disk's
    pa_deg: np.ndarray
    bt: np.ndarray  # bulge+disk only
    bulge_r_e_arcsec: np.ndarray
    bulge_q: np.ndarray
    disk_r_e_arcsec: np.ndarray
    dx_pix: np.ndarray
    dy_pix: np.ndarray

    def __len__(self) -> int:
        return self.kind.size

    def subset(self, index) -> "StructureParams":
        return StructureParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def as_columns(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _size_law(rng: np.random.Generator, mag: np.ndarray) -> np.ndarray:
    """Circularised half-light radius: the survey mock's law (median 0.35" at H = 22, 0.1 dex
    smaller per magnitude, 0.2 dex scatter)."""
    return 10 ** (np.log10(0.35) - 0.1 * (mag - 22.0) + rng.normal(0, 0.2, mag.size))


def draw_structures(
    n: int,
    seed: int,
    *,
    mag_range: tuple[float, float] = (19.0, 25.0),
    composite_fraction: float = 0.25,
) -> StructureParams:
    """Magnitudes uniform in ``mag_range``; single Sersic n log-uniform in 0.5-6 (quantised to
    0.1), q uniform 0.2-1; bulge+disk: B/T uniform 0.2-0.8, disk r_e 1.2x the size law, bulge
    r_e 0.2-0.5 of the disk's, bulge q 0.6-1, disk q from a random inclination."""
    rng = np.random.default_rng([seed, 7])
    composite = rng.random(n) < composite_fraction
    mag = rng.uniform(*mag_range, n)
    sersic_n = np.round(np.exp(rng.uniform(*np.log(N_RANGE), n)) / N_STEP) * N_STEP
    sersic_n = np.round(np.clip(sersic_n, *N_RANGE), 2)
    q = rng.uniform(0.2, 1.0, n)
    r_circ = np.clip(_size_law(rng, mag), 0.05, 1.0)
    r_e = r_circ / np.sqrt(q)
    pa = rng.uniform(0.0, 180.0, n)
    cos_i = rng.random(n)
    disk_q = np.clip(np.sqrt(cos_i**2 * (1 - 0.15**2) + 0.15**2), 0.2, 1.0)
    disk_r = np.clip(1.2 * r_circ, 0.08, 1.0) / np.sqrt(disk_q)
    bulge_r = disk_r * np.sqrt(disk_q) * rng.uniform(0.2, 0.5, n)
    bulge_q = rng.uniform(0.6, 1.0, n)
    bt = rng.uniform(0.2, 0.8, n)
    kind = np.where(sersic_n >= 2.5, "bulge", np.where(sersic_n <= 1.5, "disk", "intermediate"))
    kind = np.where(composite, "bulge_disk", kind).astype("<U12")
    nan = np.full(n, np.nan)
    return StructureParams(
        kind=kind,
        mag=mag,
        sersic_n=np.where(composite, nan, sersic_n),
        r_e_arcsec=np.where(composite, nan, r_e),
        q=np.where(composite, disk_q, q),
        pa_deg=pa,
        bt=np.where(composite, bt, nan),
        bulge_r_e_arcsec=np.where(composite, bulge_r, nan),
        bulge_q=np.where(composite, bulge_q, nan),
        disk_r_e_arcsec=np.where(composite, disk_r, nan),
        dx_pix=rng.uniform(-0.5, 0.5, n),
        dy_pix=rng.uniform(-0.5, 0.5, n),
    )


def _trunc_ratio(r_circ: float) -> float:
    """The smallest listed ratio that puts the truncation beyond the stamp's reach."""
    for ratio in TRUNC_RATIOS:
        if ratio * r_circ >= STAMP_REACH_ARCSEC:
            return ratio
    return TRUNC_RATIOS[-1]


def _profile(galsim, gsparams, n_index, r_major, flux, q, pa_deg):
    r_circ = float(r_major * np.sqrt(q))
    ratio = _trunc_ratio(r_circ)
    profile = galsim.Sersic(
        float(n_index),
        half_light_radius=r_circ,
        flux=float(flux),
        trunc=ratio * r_circ,
        flux_untruncated=True,  # flux and radius describe the untruncated profile
        gsparams=gsparams,
    )
    return profile.shear(q=float(q), beta=float(pa_deg) * galsim.degrees)


def render_order(p: StructureParams) -> np.ndarray:
    """Galaxies that share GalSim lookup tables (same n and truncation ratio) drawn together."""
    r_circ = np.where(np.isnan(p.r_e_arcsec), 0.0, p.r_e_arcsec * np.sqrt(p.q))
    ratio = np.array([_trunc_ratio(r) if r > 0 else 0.0 for r in r_circ])
    return np.lexsort((np.nan_to_num(p.sersic_n, nan=99.0), ratio))


def _render_chunk(cfg: GalaxyMockConfig, p: StructureParams, indices: np.ndarray) -> np.ndarray:
    import galsim

    gsparams = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=3e-3)
    psf = galsim.Moffat(beta=cfg.psf_moffat_beta, fwhm=cfg.psf_fwhm_arcsec, gsparams=gsparams)
    out = np.empty((len(indices), cfg.stamp_size, cfg.stamp_size), dtype=np.float32)
    for row, i in enumerate(indices.tolist()):
        flux = 10 ** (-0.4 * (p.mag[i] - cfg.zero_point_ab))
        if p.kind[i] == "bulge_disk":
            bulge = _profile(galsim, gsparams, 4.0, p.bulge_r_e_arcsec[i], flux * p.bt[i], p.bulge_q[i], p.pa_deg[i])
            disk = _profile(galsim, gsparams, 1.0, p.disk_r_e_arcsec[i], flux * (1 - p.bt[i]), p.q[i], p.pa_deg[i])
            galaxy = bulge + disk
        else:
            galaxy = _profile(galsim, gsparams, p.sersic_n[i], p.r_e_arcsec[i], flux, p.q[i], p.pa_deg[i])
        image = galsim.ImageF(cfg.stamp_size, cfg.stamp_size, scale=cfg.pixel_scale_arcsec)
        offset = galsim.PositionD(p.dx_pix[i], p.dy_pix[i])
        galsim.Convolve([galaxy, psf], gsparams=gsparams).drawImage(image=image, offset=offset)
        out[row] = image.array
    return out


def render_clean(p: StructureParams, *, cfg: GalaxyMockConfig | None = None, workers: int = 1) -> np.ndarray:
    """(n, H, W) noiseless stamps in e-/s per pixel, PSF-convolved and pixel-integrated."""
    from concurrent.futures import ProcessPoolExecutor

    from mlworker.synthetic import usable_workers

    cfg = cfg or GalaxyMockConfig()
    images = np.empty((len(p), cfg.stamp_size, cfg.stamp_size), dtype=np.float32)
    chunks = np.array_split(render_order(p), max(1, int(np.ceil(len(p) / 1000)), workers))
    chunks = [c for c in chunks if len(c)]
    if usable_workers(workers) <= 1:
        for chunk in chunks:
            images[chunk] = _render_chunk(cfg, p, chunk)
        return images
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_render_chunk, cfg, p, chunk) for chunk in chunks]
        for chunk, future in zip(chunks, futures, strict=True):
            images[chunk] = future.result()
    return images


def add_noise(clean: np.ndarray, seed: int, *, cfg: GalaxyMockConfig | None = None) -> np.ndarray:
    """One noise realisation: sky (``background_sigma``) plus the source's Poisson noise."""
    cfg = cfg or GalaxyMockConfig()
    rng = np.random.default_rng([seed, 11])
    variance = cfg.background_sigma**2 + np.clip(clean, 0, None) / cfg.exposure_time_s
    return (clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.sqrt(variance)).astype(np.float32)


def emulator_mock_data(
    n_train: int,
    n_test: int,
    seed: int,
    *,
    validation_fraction: float = 0.05,
    composite_fraction: float = 0.25,
    mag_range: tuple[float, float] = (19.0, 25.0),
    workers: int = 1,
    cfg: GalaxyMockConfig | None = None,
):
    """The emulator's training set: ``n_train`` mocks (a ``validation_fraction`` of them
    flagged for validation) and ``n_test`` held out, one noise realisation each."""
    from mlworker.ml.emulator import KINDS as EMULATOR_KINDS
    from mlworker.ml.emulator import EmulatorData

    cfg = cfg or GalaxyMockConfig()
    n = n_train + n_test
    p = draw_structures(n, seed, mag_range=mag_range, composite_fraction=composite_fraction)
    images = add_noise(render_clean(p, cfg=cfg, workers=workers), seed, cfg=cfg)
    is_test = np.arange(n) >= n_train
    rng = np.random.default_rng([seed, 3])
    is_validation = ~is_test & (rng.random(n) < validation_fraction)
    return EmulatorData(
        images=images,
        kind=np.array([EMULATOR_KINDS.index(k) for k in p.kind], dtype=np.int8),
        mag=p.mag,
        r_e_arcsec=p.r_e_arcsec,
        sersic_n=p.sersic_n,
        q=np.where(p.kind == "bulge_disk", np.nan, p.q),
        is_test=is_test,
        is_validation=is_validation,
        pixel_scale_arcsec=cfg.pixel_scale_arcsec,
        psf_fwhm_arcsec=cfg.psf_fwhm_arcsec,
        zero_point_ab=cfg.zero_point_ab,
        exposure_time_s=cfg.exposure_time_s,
    )
