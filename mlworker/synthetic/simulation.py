"""Mock VELA-like zoom-in runs: histories (mass growth, inflow episodes, a compaction event,
mergers) that drive how mock F160W images from ~20 cameras look (no Django).

The contract (README, "Mock data"): snapshots every da = 0.01 from a = 0.20 to 0.50 (z 4 to 1).
Each run draws a final halo mass 10^11.6-10^12.4 Msun growing as exp(-alpha (1/a - 2)); inflow
at the baryonic accretion rate plus 1-3 Gaussian inflow episodes; gas mass integrates inflow
minus star formation (depletion time 0.4-1 Gyr) minus outflows (mass loading 1-3); one
compaction event at a_c uniform 0.26-0.40 preceded by an inflow episode: "blue nugget" for
|a - a_c| <= 0.02, "pre" before and "post" after, with a starburst and a 60% shrink of the
half-mass radius that then regrows; 1-4 mergers with mass ratios log-uniform 0.05-1 (major if >= 1:4),
each adding stellar mass. Images: a disk-dominated, clumpy galaxy before compaction (B/T
0.05-0.2), a compact bulge in the blue nugget and after (B/T 0.6-0.85, n = 4), a disk regrowing
later (B/T relaxing towards 0.3 on a timescale da of 0.06-0.15); a recent merger
(da < 0.02) shows a companion and a tidal tail. Camera k looks along a fixed direction
(a Fibonacci sphere turned per run); the disk's inclination and position angle follow from it.
Images: 64x64, 0.06"/px, Moffat PSF 0.18", noise set so that the galaxy's S/N is 30.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlworker.synthetic.galaxies import GalaxyMockConfig, _sersic

SCALE_FACTORS = np.round(np.arange(0.20, 0.5001, 0.01), 3)
F_BARYON = 0.16


@dataclass
class RunHistory:
    name: str
    scale_factor: np.ndarray
    redshift: np.ndarray
    halo_mass: np.ndarray
    stellar_mass: np.ndarray
    gas_mass: np.ndarray
    sfr: np.ndarray
    inflow: np.ndarray
    outflow: np.ndarray
    half_mass_radius_kpc: np.ndarray
    phase: np.ndarray
    counter_rotating: np.ndarray
    compaction_a: float
    mergers: list[tuple[float, float, str]]
    bt: np.ndarray
    spin: np.ndarray  # (n, 3) disk spin direction per snapshot


def _cosmic_time_gyr(a: np.ndarray) -> np.ndarray:
    from astropy.cosmology import Planck18

    return Planck18.age(1 / a - 1).to_value("Gyr")


def run_history(index: int, seed: int) -> RunHistory:
    rng = np.random.default_rng([seed, index, 1])
    a = SCALE_FACTORS
    z = 1 / a - 1
    t = _cosmic_time_gyr(a)
    dt = np.gradient(t) * 1e9  # yr
    m_final = 10 ** rng.uniform(11.6, 12.4)
    alpha = rng.uniform(0.6, 1.0)
    halo = m_final * np.exp(-alpha * (1 / a - 2))
    inflow = F_BARYON * 0.6 * np.gradient(halo) / dt
    a_c = rng.uniform(0.26, 0.40)
    episodes = [a_c - rng.uniform(0.01, 0.03)] + list(rng.uniform(0.21, 0.49, rng.integers(0, 3)))
    counter = np.zeros(a.size, dtype=bool)
    for a_ep in episodes:
        bump = np.exp(-0.5 * ((a - a_ep) / 0.012) ** 2)
        inflow = inflow * (1 + rng.uniform(1.0, 2.5) * bump)
        if rng.random() < 0.5:
            counter |= bump > 0.5
    n_mergers = int(rng.integers(1, 5))
    mergers = []
    for a_m in np.sort(rng.uniform(0.21, 0.49, n_mergers)):
        ratio = float(10 ** rng.uniform(np.log10(0.05), 0.0))
        mergers.append((round(float(a_m), 4), round(ratio, 4), "major" if ratio >= 0.25 else "minor"))
    t_dep = rng.uniform(0.4, 1.0) * 1e9
    loading = rng.uniform(1.0, 3.0)
    stellar = np.zeros(a.size)
    gas = np.zeros(a.size)
    sfr = np.zeros(a.size)
    stellar[0] = 0.01 * halo[0]
    gas[0] = 0.5 * stellar[0]
    for k in range(a.size):
        burst = 1 + 3 * np.exp(-0.5 * ((a[k] - a_c) / 0.01) ** 2)
        sfr[k] = gas[k] / t_dep * burst if k else gas[0] / t_dep
        if k + 1 < a.size:
            gas[k + 1] = max(gas[k] + (inflow[k] - sfr[k] * (1 + loading)) * dt[k], 0.05 * gas[k])
            stellar[k + 1] = stellar[k] + 0.7 * sfr[k] * dt[k]
            for a_m, ratio, _ in mergers:
                if a[k] < a_m <= a[k + 1]:
                    stellar[k + 1] *= 1 + ratio
                    gas[k + 1] *= 1 + 0.5 * ratio
    outflow = loading * sfr
    phase = np.where(a < a_c - 0.02, "pre", np.where(a <= a_c + 0.02, "blue_nugget", "post"))
    radius = 6.0 * (stellar / 1e10) ** 0.25 * (1 + z) ** -0.5
    radius = radius * np.where(
        phase == "pre", 1.0, np.where(phase == "blue_nugget", 0.4, 0.4 + 0.6 * (1 - np.exp(-(a - a_c - 0.02) / 0.08)))
    )
    bt_pre, bt_post, tau_regrow = rng.uniform(0.05, 0.2), rng.uniform(0.6, 0.85), rng.uniform(0.06, 0.15)
    since = np.clip(a - a_c - 0.02, 0.0, None)
    bt = np.where(phase == "pre", bt_pre, 0.3 + (bt_post - 0.3) * np.exp(-since / tau_regrow))
    spin = np.tile(_random_unit(rng), (a.size, 1))
    for a_m, _ratio, kind in mergers:
        if kind == "major":
            spin[a >= a_m] = _random_unit(rng)  # a major merger reorients the disk
    return RunHistory(
        name=f"VMOCK{index + 1:02d}",
        scale_factor=a,
        redshift=z,
        halo_mass=halo,
        stellar_mass=stellar,
        gas_mass=gas,
        sfr=sfr,
        inflow=inflow,
        outflow=outflow,
        half_mass_radius_kpc=radius,
        phase=phase,
        counter_rotating=counter,
        compaction_a=float(a_c),
        mergers=mergers,
        bt=bt,
        spin=spin,
    )


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def camera_directions(n: int, rng: np.random.Generator) -> np.ndarray:
    """n viewing directions on a Fibonacci sphere, rotated at random."""
    k = np.arange(n) + 0.5
    theta = np.arccos(1 - 2 * k / n)
    phi = np.pi * (1 + 5**0.5) * k
    dirs = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return dirs @ q.T


def _magnitude(stellar_mass: float, z: float) -> float:
    from astropy.cosmology import Planck18

    dl_ratio = Planck18.luminosity_distance(z).value / Planck18.luminosity_distance(2.0).value
    return float(24.0 - 2.5 * (np.log10(stellar_mass) - 10) + 5 * np.log10(dl_ratio) - 2.5 * np.log10((1 + z) / 3))


def _kpc_per_arcsec(z: float) -> float:
    from astropy.cosmology import Planck18

    return float(Planck18.kpc_proper_per_arcmin(z).value / 60.0)


def render_snapshot(
    history: RunHistory, k: int, camera: np.ndarray, cfg: GalaxyMockConfig, snr: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """One noisy mock image of snapshot ``k`` seen along ``camera``, and its truth."""
    import galsim

    a, z = history.scale_factor[k], history.redshift[k]
    mag = _magnitude(history.stellar_mass[k], z)
    flux = 10 ** (-0.4 * (mag - cfg.zero_point_ab))
    r_arcsec = history.half_mass_radius_kpc[k] / _kpc_per_arcsec(z)
    cos_i = abs(float(np.dot(camera, history.spin[k])))
    q_disk = float(np.sqrt(cos_i**2 * (1 - 0.15**2) + 0.15**2))
    # Position angle of the projected spin axis; the disk's major axis is perpendicular to it.
    e1 = np.cross(camera, [0.0, 0.0, 1.0])
    e1 = e1 / (np.linalg.norm(e1) or 1.0)
    e2 = np.cross(camera, e1)
    pa = float(np.degrees(np.arctan2(np.dot(history.spin[k], e2), np.dot(history.spin[k], e1)))) + 90.0
    bt = float(history.bt[k])
    phase = history.phase[k]
    max_r = cfg.max_radius_arcsec
    parts = []
    bulge_r = max(0.03, r_arcsec * (0.35 if phase == "pre" else 0.5))
    parts.append(_sersic(galsim, 4.0, bulge_r, flux * bt, 0.8, pa, 3.0, max_r))
    disk_r = max(0.05, r_arcsec * 1.2)
    disk_flux = flux * (1 - bt)
    clumpy = phase == "pre" and z > 1.8
    clump_fraction = 0.3 if clumpy else 0.0
    parts.append(_sersic(galsim, 1.0, disk_r, disk_flux * (1 - clump_fraction), q_disk, pa, 3.0, max_r))
    if clumpy:
        for w in rng.dirichlet(np.ones(4)):
            rr, th = rng.uniform(0.3, 1.0) * disk_r, rng.uniform(0, 2 * np.pi)
            x, y = rr * np.cos(th), rr * np.sin(th) * q_disk
            parts.append(galsim.Gaussian(sigma=0.05, flux=disk_flux * clump_fraction * w).shift(x, y))
    recent = [m for m in history.mergers if 0 <= a - m[0] < 0.02]
    if recent:
        ratio = recent[-1][1]
        th = rng.uniform(0, 2 * np.pi)
        sep = rng.uniform(0.4, 1.0)
        comp = galsim.Gaussian(half_light_radius=max(0.05, 0.5 * bulge_r), flux=flux * ratio * 0.5)
        parts.append(comp.shift(sep * np.cos(th), sep * np.sin(th)))
        tail = galsim.Gaussian(sigma=0.15, flux=0.1 * flux).shear(q=0.25, beta=th * galsim.radians)
        parts.append(tail.shift(0.5 * sep * np.cos(th + 0.5), 0.5 * sep * np.sin(th + 0.5)))
    psf = galsim.Moffat(beta=cfg.psf_moffat_beta, fwhm=cfg.psf_fwhm_arcsec)
    image = galsim.ImageF(cfg.stamp_size, cfg.stamp_size, scale=cfg.pixel_scale_arcsec)
    galsim.Convolve([galsim.Add(parts), psf]).drawImage(image=image)
    clean = image.array.astype(np.float32)
    # Noise: the flux within the brightest pixels holding half the light has S/N = snr.
    ordered = np.sort(clean.ravel())[::-1]
    n_pix = int(np.searchsorted(np.cumsum(ordered), 0.5 * clean.sum())) + 1
    sigma = 0.5 * clean.sum() / (snr * np.sqrt(n_pix))
    observed = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
    truth = {
        "camera_inclination_deg": round(float(np.degrees(np.arccos(cos_i))), 2),
        "bt": round(bt, 4),
        "bulge_r_e_arcsec": round(bulge_r, 4),
        "disk_r_e_arcsec": round(disk_r, 4),
        "disk_q": round(q_disk, 4),
        "mag": round(mag, 3),
        "recent_merger": bool(recent),
        "noise_sigma": float(sigma),
    }
    return observed, truth


def image_name(run: str, a: float, camera: int, band: str, snr: float) -> str:
    return f"{run}_a{a:.3f}_cam{camera:02d}_{band}_snr{snr:g}.fits"


def write_run(outdir: Path, index: int, seed: int, n_cameras: int = 20, snr: float = 30.0) -> RunHistory:
    from astropy.io import fits
    from astropy.table import Table

    cfg = GalaxyMockConfig()
    history = run_history(index, seed)
    run_dir = Path(outdir) / history.name
    (run_dir / "images").mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "name": history.name,
                "code": "galaxylab mock (VELA-like)",
                "description": f"Mock zoom-in run {history.name} (seed {seed}); compaction at a = {history.compaction_a:.3f}.",
                "properties": {"seed": seed, "index": index, "compaction_scale_factor": round(history.compaction_a, 4)},
            },
            indent=2,
        )
    )
    Table(
        {
            "scale_factor": history.scale_factor,
            "redshift": np.round(history.redshift, 5),
            "stellar_mass_msun": history.stellar_mass,
            "gas_mass_msun": history.gas_mass,
            "halo_mass_msun": history.halo_mass,
            "sfr_msun_per_yr": history.sfr,
            "gas_inflow_rate_msun_per_yr": history.inflow,
            "gas_outflow_rate_msun_per_yr": history.outflow,
            "half_mass_radius_kpc": history.half_mass_radius_kpc,
            "compaction_phase": history.phase,
            "counter_rotating_stream": history.counter_rotating,
        }
    ).write(run_dir / "snapshots.csv", format="ascii.csv", overwrite=True)
    Table(rows=history.mergers or None, names=("scale_factor", "mass_ratio", "kind"), dtype=(float, float, "U5")).write(
        run_dir / "mergers.csv", format="ascii.csv", overwrite=True
    )
    rng = np.random.default_rng([seed, index, 2])
    cameras = camera_directions(n_cameras, rng)
    truth_rows = []
    for k, a in enumerate(history.scale_factor):
        for cam in range(n_cameras):
            image, truth = render_snapshot(history, k, cameras[cam], cfg, snr, rng)
            h = fits.Header()
            h["RUN"], h["SCALEFAC"], h["REDSHIFT"], h["CAMERA"] = (
                history.name,
                float(a),
                float(history.redshift[k]),
                cam,
            )
            h["TELESCOP"], h["INSTRUME"], h["FILTER"] = "HST", "WFC3", cfg.band
            h["SNR"] = (snr, "signal-to-noise setting")
            h["PSF_FWHM"] = (cfg.psf_fwhm_arcsec, "arcsec")
            h["MAGZERO"] = cfg.zero_point_ab
            h["PIXSCALE"] = (cfg.pixel_scale_arcsec, "arcsec/pixel")
            h["BUNIT"] = "ELECTRONS/S"
            name = image_name(history.name, a, cam, cfg.band, snr)
            fits.PrimaryHDU(image, header=h).writeto(run_dir / "images" / name, overwrite=True)
            truth_rows.append(
                {
                    "image": name,
                    "scale_factor": float(a),
                    "camera": cam,
                    "compaction_phase": str(history.phase[k]),
                    **truth,
                }
            )
    Table(rows=truth_rows).write(run_dir / "images_truth.csv", format="ascii.csv", overwrite=True)
    return history


def _write_run_job(args) -> str:
    outdir, index, seed, n_cameras = args
    return write_run(Path(outdir), index, seed, n_cameras).name


def write_simulation_mock(
    outdir, runs: int, seed: int, *, n_cameras: int = 20, workers: int = 1, on_progress=None
) -> list[str]:
    """Writes ``runs`` run directories under ``outdir`` (layout in the README)."""
    from concurrent.futures import ProcessPoolExecutor

    from mlworker.synthetic import usable_workers

    jobs = [(str(outdir), i, seed, n_cameras) for i in range(runs)]
    names = []
    if usable_workers(workers) <= 1 or runs == 1:
        for job in jobs:
            names.append(_write_run_job(job))
            if on_progress:
                on_progress(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for name in pool.map(_write_run_job, jobs):
                names.append(name)
                if on_progress:
                    on_progress(1)
    return names
