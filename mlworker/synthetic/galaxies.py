"""Mock CANDELS-like galaxies: GalSim-rendered HST/WFC3 F160W cutouts and a catalog (no Django).

The distributions are part of the contract (README, "Mock data"):

- stamps 64x64 at 0.06"/px, Moffat PSF (beta 3) FWHM 0.18", AB zero point 25.95, pixels
  in e-/s; white background noise sigma 0.0152 e-/s/px (5 sigma point-source depth
  H ~ 27 in a 0.17" radius aperture) plus source Poisson noise for a 3,000 s exposure;
- H magnitudes 19.5-25 with counts dN/dm ~ 10^(0.25 m); circularised half-light radius
  log-normal, median 0.35" at H = 22 shrinking 0.1 dex per magnitude, 0.2 dex scatter;
- classes: spheroid 20% (Sersic n 2.5-6), disk 28% (n 0.5-1.5, axis ratio from a random
  inclination with intrinsic thickness 0.15), bulge+disk 20% (de Vaucouleurs bulge + exponential
  disk, B/T uniform 0.2-0.8), irregular/clumpy 12% (disk + 2-6 star-forming clumps, off-centre),
  merging pair 7%, compact/point source 7%, faint unclassifiable 6% (H 24.3-25, low surface
  brightness, amorphous);
- Sersic n quantised to 0.1 (GalSim builds a lookup table per n); profiles truncated at
  3-8 half-light radii so that all light falls inside the stamp (truth describes the
  profile as drawn). r_e is given both circularised (GalSim's half_light_radius) and
  along the major axis (r_circ / sqrt(q), astropy's Sersic2D convention).
"""

from dataclasses import dataclass, field

import numpy as np

CLASSES = ("spheroid", "disk", "bulge_disk", "irregular", "merger", "compact", "unclassifiable")
CLASS_FRACTIONS = (0.20, 0.28, 0.20, 0.12, 0.07, 0.07, 0.06)
N_GRID_STEP = 0.1
TRUNCATION_RATIOS = (3.0, 4.0, 6.0, 8.0)  # truncation radius / half-light radius


@dataclass(frozen=True)
class GalaxyMockConfig:
    stamp_size: int = 64
    pixel_scale_arcsec: float = 0.06
    psf_fwhm_arcsec: float = 0.18
    psf_moffat_beta: float = 3.0
    zero_point_ab: float = 25.95
    background_sigma: float = 0.0152  # e-/s per pixel
    exposure_time_s: float = 3000.0
    mag_range: tuple[float, float] = (19.5, 25.0)
    counts_slope: float = 0.25  # dN/dm ~ 10^(slope m)
    field_centre_deg: tuple[float, float] = (53.12, -27.80)  # GOODS-S
    field_half_width_deg: float = 0.12
    band: str = "F160W"
    instrument: str = "HST/WFC3-IR"
    class_fractions: tuple[float, ...] = CLASS_FRACTIONS
    noise: bool = True

    @property
    def max_radius_arcsec(self) -> float:
        """Light is truncated within this radius (along the major axis)."""
        return (self.stamp_size / 2 - 2) * self.pixel_scale_arcsec


@dataclass
class GalaxyParams:
    """Vectorised parameters of n mock galaxies (the truth table's columns)."""

    source_id: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    true_class: np.ndarray
    mag: np.ndarray
    sersic_n: np.ndarray  # single-component galaxies; NaN otherwise
    r_e_circ_arcsec: np.ndarray
    q: np.ndarray
    pa_deg: np.ndarray
    truncation_ratio: np.ndarray
    bt: np.ndarray  # bulge+disk only
    bulge_r_e_arcsec: np.ndarray
    bulge_q: np.ndarray
    disk_r_e_arcsec: np.ndarray
    disk_q: np.ndarray
    dx_pix: np.ndarray
    dy_pix: np.ndarray
    z_true: np.ndarray
    z_phot: np.ndarray
    z_phot_err: np.ndarray
    z_spec: np.ndarray
    log_stellar_mass: np.ndarray
    mag_err: np.ndarray
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.source_id.size


def _magnitudes(rng, n, lo, hi, slope):
    # Inverse CDF of p(m) ~ 10^(slope m) on [lo, hi].
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + rng.random(n) * (b - a)) / slope


def _inclined_q(rng, n, q0=0.15):
    cos_i = rng.random(n)
    return np.sqrt(cos_i**2 * (1 - q0**2) + q0**2)


def draw_parameters(cfg: GalaxyMockConfig, n: int, seed: int, id_prefix: str = "MOCK") -> GalaxyParams:
    """Parameters of ``n`` galaxies, vectorised (a million in about a second)."""
    rng = np.random.default_rng(seed)
    fractions = np.asarray(cfg.class_fractions, dtype=float)
    cls = rng.choice(len(CLASSES), size=n, p=fractions / fractions.sum())
    mag = _magnitudes(rng, n, *cfg.mag_range, cfg.counts_slope)
    faint = cls == CLASSES.index("unclassifiable")
    mag[faint] = rng.uniform(max(cfg.mag_range[1] - 0.7, cfg.mag_range[0]), cfg.mag_range[1], faint.sum())

    log_r = np.log10(0.35) - 0.1 * (mag - 22.0) + rng.normal(0, 0.2, n)
    r_e = 10**log_r
    spheroid, disk, bd = (cls == CLASSES.index(c) for c in ("spheroid", "disk", "bulge_disk"))
    r_e[spheroid] *= 10**-0.15
    compact = cls == CLASSES.index("compact")
    r_e[compact] = rng.uniform(0.0, 0.05, compact.sum())  # < 0.02": drawn as a point source
    r_e[faint] *= 1.4  # low surface brightness
    r_e = np.clip(r_e, 0.0, 1.2)

    sersic_n = np.full(n, np.nan)
    sersic_n[spheroid] = rng.uniform(2.5, 6.0, spheroid.sum())
    sersic_n[disk] = rng.uniform(0.5, 1.5, disk.sum())
    sersic_n = np.round(np.round(sersic_n / N_GRID_STEP) * N_GRID_STEP, 2)

    q = rng.uniform(0.5, 1.0, n)
    q[disk] = _inclined_q(rng, disk.sum())
    irregular = cls == CLASSES.index("irregular")
    q[irregular] = rng.uniform(0.3, 1.0, irregular.sum())
    pa = rng.uniform(0.0, 180.0, n)

    bt = np.full(n, np.nan)
    bt[bd] = rng.uniform(0.2, 0.8, bd.sum())
    bulge_r = np.full(n, np.nan)
    disk_r = np.full(n, np.nan)
    bulge_q = np.full(n, np.nan)
    disk_q = np.full(n, np.nan)
    disk_r[bd] = r_e[bd] * rng.uniform(1.0, 1.5, bd.sum())
    bulge_r[bd] = disk_r[bd] * rng.uniform(0.2, 0.5, bd.sum())
    bulge_q[bd] = rng.uniform(0.6, 1.0, bd.sum())
    disk_q[bd] = _inclined_q(rng, bd.sum())

    # Truncate light within the stamp: the largest ratio that fits along the major axis;
    # galaxies too large for even the smallest ratio are shrunk to fit.
    limit = cfg.max_radius_arcsec * np.sqrt(q)
    ratio = np.full(n, TRUNCATION_RATIOS[0])
    for r in TRUNCATION_RATIOS[1:]:
        ratio = np.where(r * r_e <= limit, r, ratio)
    too_big = ratio * r_e > limit
    r_e[too_big] = limit[too_big] / ratio[too_big]
    for arr, qq in ((disk_r, disk_q), (bulge_r, bulge_q)):
        cap = cfg.max_radius_arcsec * np.sqrt(np.nan_to_num(qq, nan=1.0)) / TRUNCATION_RATIOS[0]
        np.minimum(arr, cap, out=arr, where=np.isfinite(arr))

    # Redshifts and masses: indicative only, so that catalogs look like survey catalogs.
    z_true = np.clip(rng.gamma(3.0, 0.5, n) + 0.1, 0.05, 6.0)
    z_err = 0.03 * (1 + z_true)
    z_phot = z_true + rng.normal(0, 1, n) * z_err
    outlier = rng.random(n) < 0.03
    z_phot[outlier] = rng.uniform(0.05, 5.0, outlier.sum())
    z_phot = np.clip(z_phot, 0.01, 8.0)
    z_spec = np.where((mag < 23.5) & (rng.random(n) < 0.25), np.round(z_true + rng.normal(0, 3e-4, n), 5), np.nan)
    z_spec = np.clip(z_spec, 0.0, None)
    log_mass = np.clip(10.3 - 0.4 * (mag - 22.0) + 0.8 * np.log10(1 + z_true) + rng.normal(0, 0.25, n), 7.0, 12.5)
    flux = 10 ** (-0.4 * (mag - cfg.zero_point_ab))
    aperture_noise = cfg.background_sigma * np.sqrt(np.pi * (r_e / cfg.pixel_scale_arcsec + 2.0) ** 2)
    mag_err = np.round(1.0857 * np.sqrt(aperture_noise**2 + flux / cfg.exposure_time_s) / flux, 4)

    ra0, dec0 = cfg.field_centre_deg
    dec = dec0 + rng.uniform(-cfg.field_half_width_deg, cfg.field_half_width_deg, n)
    ra = (ra0 + rng.uniform(-cfg.field_half_width_deg, cfg.field_half_width_deg, n) / np.cos(np.radians(dec))) % 360
    width = max(5, len(str(n)))
    ids = np.char.add(f"{id_prefix}-", np.char.zfill(np.arange(1, n + 1).astype(str), width))
    return GalaxyParams(
        source_id=ids,
        ra=ra,
        dec=dec,
        true_class=np.asarray(CLASSES)[cls],
        mag=mag,
        sersic_n=sersic_n,
        r_e_circ_arcsec=r_e,
        q=q,
        pa_deg=pa,
        truncation_ratio=ratio,
        bt=bt,
        bulge_r_e_arcsec=bulge_r,
        bulge_q=bulge_q,
        disk_r_e_arcsec=disk_r,
        disk_q=disk_q,
        dx_pix=rng.uniform(-0.5, 0.5, n),
        dy_pix=rng.uniform(-0.5, 0.5, n),
        z_true=z_true,
        z_phot=z_phot,
        z_phot_err=z_err,
        z_spec=z_spec,
        log_stellar_mass=log_mass,
        mag_err=mag_err,
    )


def _sersic(galsim, n_index, hlr, flux, q, pa, ratio, max_r):
    # A fixed truncation/half-light ratio per n lets GalSim reuse its lookup tables (a new
    # ratio costs ~30 ms); a profile too large for the stamp is shrunk instead.
    hlr = min(hlr, max_r * np.sqrt(q) / ratio)
    try:
        profile = galsim.Sersic(n_index, half_light_radius=hlr, flux=flux, trunc=ratio * hlr, flux_untruncated=False)
    except galsim.GalSimError:
        # Low-n profiles hold no light at large radii, where GalSim's solver for the
        # truncated scale radius fails: the untruncated profile is the same there.
        profile = galsim.Sersic(n_index, half_light_radius=hlr, flux=flux)
    return profile.shear(q=q, beta=pa * galsim.degrees)


def galaxy_profile(cfg: GalaxyMockConfig, p: GalaxyParams, i: int, rng: np.random.Generator):
    """The GalSim profile (before PSF) of galaxy ``i``."""
    import galsim

    flux = 10 ** (-0.4 * (p.mag[i] - cfg.zero_point_ab))
    cls, pa, q = p.true_class[i], p.pa_deg[i], p.q[i]
    max_r = cfg.max_radius_arcsec
    if cls in ("spheroid", "disk"):
        return _sersic(galsim, float(p.sersic_n[i]), p.r_e_circ_arcsec[i], flux, q, pa, p.truncation_ratio[i], max_r)
    if cls == "bulge_disk":
        bulge = _sersic(galsim, 4.0, p.bulge_r_e_arcsec[i], flux * p.bt[i], p.bulge_q[i], pa, 3.0, max_r)
        disk = _sersic(galsim, 1.0, p.disk_r_e_arcsec[i], flux * (1 - p.bt[i]), p.disk_q[i], pa, 3.0, max_r)
        return bulge + disk
    if cls == "compact":
        if p.r_e_circ_arcsec[i] < 0.02:
            return galsim.DeltaFunction(flux=flux)
        return galsim.Gaussian(half_light_radius=p.r_e_circ_arcsec[i], flux=flux)
    if cls in ("irregular", "unclassifiable"):
        n_clumps = int(rng.integers(2, 7)) if cls == "irregular" else int(rng.integers(0, 3))
        clump_fraction = rng.uniform(0.25, 0.5) if cls == "irregular" else 0.2 * n_clumps / 2
        hlr = p.r_e_circ_arcsec[i]
        base = _sersic(galsim, 1.0, hlr, flux * (1 - clump_fraction), q, pa, 3.0, max_r)
        parts = [base.shift(*(rng.normal(0, 0.25 * hlr, 2)))]
        weights = rng.dirichlet(np.ones(max(n_clumps, 1)))
        for k in range(n_clumps):
            r = min(rng.uniform(0.2, 1.2) * hlr, max_r * 0.6)
            theta = rng.uniform(0, 2 * np.pi)
            clump = galsim.Gaussian(sigma=rng.uniform(0.04, 0.1), flux=flux * clump_fraction * weights[k])
            parts.append(clump.shift(r * np.cos(theta), r * np.sin(theta)))
        return galsim.Add(parts) if len(parts) > 1 else parts[0]
    if cls == "merger":
        ratio = rng.uniform(1.0, 4.0)
        f1, f2 = flux * ratio / (1 + ratio), flux / (1 + ratio)
        sep = min(rng.uniform(0.35, 1.1), max_r * 0.7)
        theta = rng.uniform(0, 2 * np.pi)
        n1, n2 = (float(x) for x in rng.choice([1.0, 2.0, 4.0], 2))
        hlr1 = min(p.r_e_circ_arcsec[i], 0.45)
        hlr2 = min(hlr1 * rng.uniform(0.5, 1.0), 0.35)
        d1, d2 = sep * f2 / flux, sep * f1 / flux  # offsets from the light-weighted centre
        g1 = _sersic(galsim, n1, hlr1, f1 * 0.9, q, pa, 3.0, max_r - d1)
        g1 = g1.shift(-d1 * np.cos(theta), -d1 * np.sin(theta))
        g2 = _sersic(galsim, n2, hlr2, f2 * 0.9, rng.uniform(0.4, 1.0), rng.uniform(0, 180), 3.0, max_r - d2)
        g2 = g2.shift(d2 * np.cos(theta), d2 * np.sin(theta))
        tail = galsim.Gaussian(sigma=0.12, flux=0.1 * flux).shear(q=0.2, beta=theta * galsim.radians)
        tail = tail.shift(0.5 * sep * np.cos(theta + 0.6), 0.5 * sep * np.sin(theta + 0.6))
        return g1 + g2 + tail
    raise ValueError(f"unknown class {cls}")


def render_order(p: GalaxyParams) -> np.ndarray:
    """Indices sorted so that galaxies sharing a Sersic lookup table are drawn together:
    GalSim keeps only ~100 tables, and rebuilding one costs ~30 ms."""
    key_n = np.nan_to_num(p.sersic_n, nan=99.0)
    return np.lexsort((p.truncation_ratio, key_n))


class Renderer:
    """Draws stamps for a parameter set; one per process (GalSim caches lookup tables)."""

    def __init__(self, cfg: GalaxyMockConfig):
        import galsim

        self.cfg = cfg
        self.galsim = galsim
        self.psf = galsim.Moffat(beta=cfg.psf_moffat_beta, fwhm=cfg.psf_fwhm_arcsec)

    def render(self, p: GalaxyParams, i: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(noiseless, observed) float32 images of galaxy ``i`` in e-/s per pixel."""
        cfg = self.cfg
        rng = np.random.default_rng([seed, i])
        profile = galaxy_profile(cfg, p, i, rng)
        image = self.galsim.ImageF(cfg.stamp_size, cfg.stamp_size, scale=cfg.pixel_scale_arcsec)
        offset = self.galsim.PositionD(p.dx_pix[i], p.dy_pix[i])
        self.galsim.Convolve([profile, self.psf]).drawImage(image=image, offset=offset)
        clean = image.array.astype(np.float32)
        if not cfg.noise:
            return clean, clean.copy()
        variance = cfg.background_sigma**2 + np.clip(clean, 0, None) / cfg.exposure_time_s
        observed = clean + rng.normal(0.0, 1.0, clean.shape).astype(np.float32) * np.sqrt(variance).astype(np.float32)
        return clean, observed


def cutout_header(cfg: GalaxyMockConfig, p: GalaxyParams, i: int):
    from astropy.io import fits

    h = fits.Header()
    centre = cfg.stamp_size / 2 + 0.5
    h["OBJECT"] = (str(p.source_id[i]), "source id")
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = "WFC3"
    h["FILTER"] = (cfg.band, "filter")
    h["BUNIT"] = ("ELECTRONS/S", "pixel units")
    h["EXPTIME"] = (cfg.exposure_time_s, "s")
    h["MAGZERO"] = (cfg.zero_point_ab, "AB magnitude of 1 e-/s")
    h["PSF_FWHM"] = (cfg.psf_fwhm_arcsec, "arcsec, Moffat beta=3")
    h["BKGSIG"] = (cfg.background_sigma, "background rms, e-/s per pixel")
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRPIX1"], h["CRPIX2"] = centre + p.dx_pix[i], centre + p.dy_pix[i]
    h["CRVAL1"], h["CRVAL2"] = float(p.ra[i]), float(p.dec[i])
    h["CD1_1"], h["CD1_2"] = -cfg.pixel_scale_arcsec / 3600.0, 0.0
    h["CD2_1"], h["CD2_2"] = 0.0, cfg.pixel_scale_arcsec / 3600.0
    h["MOCK"] = (True, "galaxylab mock")
    return h


def _write_cutouts(cfg: GalaxyMockConfig, p: GalaxyParams, seed: int, indices: np.ndarray, outdir: str) -> int:
    from pathlib import Path

    from astropy.io import fits

    renderer = Renderer(cfg)
    out = Path(outdir)
    for i in indices.tolist():
        _, observed = renderer.render(p, i, seed)
        fits.PrimaryHDU(observed, header=cutout_header(cfg, p, i)).writeto(
            out / f"{p.source_id[i]}.fits", overwrite=True
        )
    return len(indices)


def _render_chunk(cfg: GalaxyMockConfig, p: GalaxyParams, seed: int, indices: np.ndarray) -> np.ndarray:
    renderer = Renderer(cfg)
    return np.stack([renderer.render(p, i, seed)[1] for i in indices.tolist()])


def render_images(cfg: GalaxyMockConfig, p: GalaxyParams, seed: int, *, workers: int = 1) -> np.ndarray:
    """(n, H, W) float32 observed stamps of every galaxy of ``p``, in memory (the same
    pixels ``write_galaxy_mock`` writes for the same seed), rendered on ``workers`` processes."""
    from concurrent.futures import ProcessPoolExecutor

    from mlworker.synthetic import usable_workers

    images = np.empty((len(p), cfg.stamp_size, cfg.stamp_size), dtype=np.float32)
    chunks = np.array_split(render_order(p), max(1, int(np.ceil(len(p) / 500))))
    if usable_workers(workers) <= 1:
        for chunk in chunks:
            images[chunk] = _render_chunk(cfg, p, seed, chunk)
        return images
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_render_chunk, cfg, p, seed, chunk) for chunk in chunks]
        for chunk, future in zip(chunks, futures, strict=True):
            images[chunk] = future.result()
    return images


TRUTH_COLUMNS = (
    "source_id",
    "true_class",
    "mag",
    "sersic_n",
    "r_e_circ_arcsec",
    "q",
    "pa_deg",
    "truncation_ratio",
    "bt",
    "bulge_r_e_arcsec",
    "bulge_q",
    "disk_r_e_arcsec",
    "disk_q",
    "dx_pix",
    "dy_pix",
    "z_true",
)


def truth_table(p: GalaxyParams):
    from astropy.table import Table

    table = Table({c: getattr(p, c) for c in TRUTH_COLUMNS})
    single = np.isin(p.true_class, ["spheroid", "disk"])
    bd = p.true_class == "bulge_disk"
    # Size and axis ratio of every galaxy as drawn (for bulge+disk: the disk's), whatever its class.
    table["size_arcsec"] = np.where(bd, p.disk_r_e_arcsec, p.r_e_circ_arcsec)
    table["axis_ratio"] = np.where(bd, p.disk_q, p.q)
    table["r_e_maj_arcsec"] = np.where(single, p.r_e_circ_arcsec / np.sqrt(p.q), np.nan)
    for c in ("sersic_n", "r_e_circ_arcsec", "q", "pa_deg", "truncation_ratio"):
        table[c] = np.where(single, table[c], np.nan)
    return table


def catalog_table(p: GalaxyParams):
    from astropy.table import Table

    return Table(
        {
            "id": p.source_id,
            "ra": np.round(p.ra, 7),
            "dec": np.round(p.dec, 7),
            "mag": np.round(p.mag, 4),
            "mag_err": p.mag_err,
            "z_phot": np.round(p.z_phot, 4),
            "z_phot_err": np.round(p.z_phot_err, 4),
            "z_spec": p.z_spec,
            "log_stellar_mass": np.round(p.log_stellar_mass, 3),
        }
    )


def write_galaxy_mock(
    outdir,
    n: int,
    seed: int,
    *,
    cutouts: bool = True,
    fmt: str = "csv",
    workers: int = 1,
    cfg: GalaxyMockConfig | None = None,
    on_progress=None,
) -> GalaxyParams:
    """Writes ``catalog.<fmt>`` (csv, fits or vot), ``truth.csv`` and ``cutouts/<id>.fits``."""
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    from mlworker.synthetic import usable_workers

    cfg = cfg or GalaxyMockConfig()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    p = draw_parameters(cfg, n, seed)
    catalog = catalog_table(p)
    if fmt == "csv":
        catalog.write(out / "catalog.csv", format="ascii.csv", overwrite=True)
    elif fmt == "fits":
        catalog.write(out / "catalog.fits", overwrite=True)
    elif fmt == "vot":
        catalog.write(out / "catalog.vot", format="votable", overwrite=True)
    else:
        raise ValueError(f"unknown catalog format {fmt!r} (csv, fits, vot)")
    truth_table(p).write(out / "truth.csv", format="ascii.csv", overwrite=True)
    if not cutouts:
        return p
    (out / "cutouts").mkdir(exist_ok=True)
    order = render_order(p)
    chunks = np.array_split(order, max(1, int(np.ceil(n / 200))))
    if usable_workers(workers) <= 1:
        for chunk in chunks:
            _write_cutouts(cfg, p, seed, chunk, str(out / "cutouts"))
            if on_progress:
                on_progress(len(chunk))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_cutouts, cfg, p, seed, chunk, str(out / "cutouts")) for chunk in chunks]
            for future in futures:
                done = future.result()
                if on_progress:
                    on_progress(done)
    return p
