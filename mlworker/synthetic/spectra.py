"""Mock SDSS/BOSS quasar sightlines with a Lyman-alpha forest, DLAs and sub-DLAs (no Django).

The distributions are part of the contract (README, "Mock data"):

- BOSS grid: log10(lambda/A) = i * 1e-4 for 3600-10400 A; flux in 1e-17 erg/s/cm^2/A;
  resolution R ~ 2000 (Gaussian LSF, FWHM 2.2 pixels);
- quasars: z_qso uniform 2.2-4.5; power-law continuum f_lambda ~ lambda^-1.5 (+-0.3) with
  Gaussian broad emission lines (Ly-beta/OVI, Ly-alpha, NV, SiIV, CIV, CIII], MgII);
- forest: lognormal optical depth tau = tau0(z) exp(s g - s^2/2) (g a Gaussian field smoothed
  over ~2 pixels, s = 1.5), tau0 solved so that the mean transmitted flux is
  exp(-tau_eff(z)) with tau_eff = 0.0018 (1+z)^3.92; the Ly-beta forest below Ly-beta
  emission from the same gas (tau_beta = 0.160 tau_alpha);
- absorbers along the path from the Lyman limit (or the blue end) to 3,000 km/s short of
  the quasar: DLAs (log N 20.3-22) with incidence l(X) = 0.05 per unit absorption distance
  (Planck18) and f(N) ~ N^-2; sub-DLAs (log N 19.3-20.3) with f(N) ~ N^-1.4 joined
  continuously to the DLA f(N) at 20.3 (so about 3.9 times as many); the incidence can be
  multiplied per sightline (``dla_boost``, stated in the truth); each absorber is a Voigt
  profile in Ly-alpha and Ly-beta (b = 20-40 km/s) with its Lyman-limit continuum absorption;
- Lyman-limit systems (log N 17.5-19.3, f(N) ~ N^-0.8, b = 20-40 km/s, not labelled): the
  measured incidence of tau_912 >= 2 systems, l(z) = 1.9 ((1+z)/4.7)^5.2 at z >= 3.3
  (Prochaska, O'Meara & Worseck 2010) and ~ (1+z)^1.83 below (Ribaudo et al. 2011), minus the
  mock's own (unboosted) DLAs and sub-DLAs, along the whole path short of the quasar;
- the IGM's Lyman-continuum opacity below each absorber redshift's 912 A from the systems
  thinner than log N 17.5: 60% (Fumagalli et al. 2013) of the total dtau/dz = (dl/dz) /
  lambda_mfp with lambda_mfp = 37 [(1+z)/5]^-5.4 h70^-1 proper Mpc (Worseck et al. 2014),
  falling as (lambda_rest/912 A)^1.5 blue-ward (f(N) ~ N^-1.5);
- noise: Gaussian with S/N per pixel at rest 1420-1480 A log-uniform in 3-30, rising at the blue
  end and at bright sky lines; 0-3 masked runs of 5-40 pixels (ivar 0, FULLREJECT) per spectrum.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.special import wofz

C_KMS = 299_792.458
C_CMS = 2.99792458e10
SIGMA0 = 0.026540  # pi e^2 / (m_e c), cm^2 Hz
LYA = (1215.67, 0.4164, 6.265e8)  # rest wavelength A, oscillator strength, Gamma s^-1
LYB = (1025.72, 0.0791, 1.897e8)
LYMAN_LIMIT = 911.75
SIGMA_LL = 6.30e-18  # cm^2 at the Lyman limit
TAU_BETA_OVER_ALPHA = (LYB[1] * LYB[0]) / (LYA[1] * LYA[0])
LOGLAM_STEP = 1e-4
BOSS_START, BOSS_STOP = 35563, 40170  # 3600-10400 A
FULLREJECT, BRIGHTSKY = 1 << 18, 1 << 23
EMISSION_LINES = (  # rest A, rest equivalent width A, sigma km/s
    (1033.0, 12.0, 2500.0),
    (1215.67, 70.0, 2200.0),
    (1240.8, 15.0, 2000.0),
    (1400.0, 8.0, 2500.0),
    (1549.0, 30.0, 2500.0),
    (1909.0, 20.0, 3000.0),
    (2798.0, 30.0, 2500.0),
)


def tau_eff(z: np.ndarray | float) -> np.ndarray:
    """Effective Ly-alpha optical depth of the forest, 0.0018 (1+z)^3.92."""
    return 0.0018 * (1.0 + np.asarray(z)) ** 3.92


@dataclass(frozen=True)
class SpectraMockConfig:
    z_range: tuple[float, float] = (2.2, 4.5)
    snr_range: tuple[float, float] = (3.0, 30.0)
    dla_incidence_x: float = 0.05
    lognormal_sigma: float = 1.5
    forest_smoothing_px: float = 2.0
    lsf_fwhm_px: float = 2.2
    subsample: int = 5
    start_index: int = BOSS_START
    stop_index: int = BOSS_STOP
    forest: bool = True
    lyman_limit_systems: bool = True
    igm_continuum: bool = True
    noise: bool = True
    masks: bool = True


@dataclass
class Absorber:
    z_abs: float
    log_nhi: float
    b_kms: float

    @property
    def kind(self) -> str:
        return "dla" if self.log_nhi >= 20.3 else "subdla"


@dataclass
class MockSightline:
    index: int
    z_qso: float
    snr_target: float
    dla_boost: float
    loglam: np.ndarray
    flux: np.ndarray  # observed
    ivar: np.ndarray
    and_mask: np.ndarray
    model: np.ndarray  # noiseless observed spectrum
    continuum: np.ndarray  # unabsorbed quasar spectrum (after the LSF)
    absorbers: list[Absorber] = field(default_factory=list)  # DLAs and sub-DLAs: the truth
    lyman_limit_systems: list[Absorber] = field(default_factory=list)  # log N 17.5-19.3, unlabelled


class _Tau0Table:
    """tau0 such that E[exp(-tau0 exp(s g - s^2/2))] = exp(-tau_eff), for g ~ N(0, 1)."""

    def __init__(self, sigma: float):
        nodes, weights = np.polynomial.hermite_e.hermegauss(120)
        weights = weights / weights.sum()
        lognormal = np.exp(sigma * nodes - sigma**2 / 2)
        self.tau0 = np.logspace(-4, 2.5, 800)
        mean_flux = np.exp(-self.tau0[:, None] * lognormal[None, :]) @ weights
        self.log_teff = np.log(-np.log(mean_flux))  # increasing with tau0

    def __call__(self, teff: np.ndarray) -> np.ndarray:
        return np.interp(np.log(teff), self.log_teff, self.tau0)


def voigt_tau(wave_obs: np.ndarray, z_abs: float, log_nhi: float, b_kms: float, line=LYA) -> np.ndarray:
    """Optical depth of one H I line (Voigt profile, Faddeeva function) at observed wavelengths."""
    lam0, f_osc, gamma = line
    nu0 = C_CMS / (lam0 * 1e-8)
    dnu_d = b_kms * 1e5 / (lam0 * 1e-8)
    nu = C_CMS / (wave_obs / (1.0 + z_abs) * 1e-8)
    a = gamma / (4 * np.pi * dnu_d)
    u = (nu - nu0) / dnu_d
    h = wofz(u + 1j * a).real
    return 10**log_nhi * SIGMA0 * f_osc * h / (np.sqrt(np.pi) * dnu_d)


def absorber_tau(wave_obs: np.ndarray, absorber: Absorber) -> np.ndarray:
    """Ly-alpha + Ly-beta + Lyman-limit optical depth of one absorber."""
    tau = voigt_tau(wave_obs, absorber.z_abs, absorber.log_nhi, absorber.b_kms, LYA)
    tau += voigt_tau(wave_obs, absorber.z_abs, absorber.log_nhi, absorber.b_kms, LYB)
    rest = wave_obs / (1.0 + absorber.z_abs)
    below = rest < LYMAN_LIMIT
    tau[below] += 10**absorber.log_nhi * SIGMA_LL * (rest[below] / LYMAN_LIMIT) ** 3
    return tau


def voigt_equivalent_width(log_nhi: float, b_kms: float = 30.0, line=LYA, half_width: float | None = None) -> float:
    """Rest-frame equivalent width (A) of a Voigt line, integrated numerically.

    Over +-``half_width`` A if given; otherwise over +-500 A plus the damping-wing tails
    beyond (tau ~ K / dlambda^2 there, so each tail adds about tau(edge) * 500 A).
    """
    lam0 = line[0]
    hw = half_width or 500.0
    # Fine spacing near the core, coarser in the wings.
    core = np.linspace(-5.0, 5.0, 20_001)
    wing = np.geomspace(5.0, hw, 20_000)[1:] if hw > 5.0 else np.array([])
    offsets = np.concatenate([-wing[::-1], core[(core >= -hw) & (core <= hw)], wing])
    tau = voigt_tau(lam0 + offsets, 0.0, log_nhi, b_kms, line)
    width = float(np.trapezoid(1.0 - np.exp(-tau), offsets))
    if half_width is None:
        width += (tau[0] + tau[-1]) * hw
    return width


def _dx_dz(z: np.ndarray) -> np.ndarray:
    from astropy.cosmology import Planck18

    return (1 + z) ** 2 / Planck18.efunc(z)


def _draw_log_nhi(rng: np.random.Generator, kind: str) -> float:
    u = rng.random()
    if kind == "dla":  # f(N) ~ N^-2 on 10^20.3-10^22
        lo, hi = 10**-20.3, 10**-22.0
        return float(-np.log10(lo - u * (lo - hi)))
    lo, hi = 10 ** (-0.4 * 19.3), 10 ** (-0.4 * 20.3)  # f(N) ~ N^-1.4 on 10^19.3-10^20.3
    return float(np.log10((lo - u * (lo - hi)) ** (-1 / 0.4)))


SUBDLA_PER_DLA = ((10**0.4 - 1) / 0.4) / (1 - 10**-1.7)  # ratio of the f(N) integrals
LLS_LOGN = (17.5, 19.3)
LLS_BETA = 0.8  # f(N) ~ N^-0.8 across the Lyman-limit systems (shallower than -1 at 10^18)
IGM_DIFFUSE_SHARE = 0.6  # of the Lyman-continuum opacity, from systems thinner than 10^17.5
IGM_NU_INDEX = 1.5  # tau_eff(nu) ~ sigma(nu)^(beta-1) = (nu/nu_912)^-3(beta-1) for beta = 1.5


def lls_incidence(z: np.ndarray | float) -> np.ndarray:
    """Measured dN/dz of tau_912 >= 2 absorbers (log N >= 17.5, DLAs included): Prochaska,
    O'Meara & Worseck (2010) at z >= 3.3, joined to Ribaudo et al. (2011)'s (1+z)^1.83 below."""
    z = np.asarray(z, dtype=float)
    high = 1.9 * ((1.0 + z) / 4.7) ** 5.2
    low = 1.9 * (4.3 / 4.7) ** 5.2 * ((1.0 + z) / 4.3) ** 1.83
    return np.where(z >= 3.3, high, low)


def mean_free_path_mpc(z: np.ndarray | float) -> np.ndarray:
    """Mean free path of H I-ionising photons, proper Mpc (Worseck et al. 2014, for Planck18's h)."""
    from astropy.cosmology import Planck18

    return 37.0 * (70.0 / Planck18.H0.value) * ((1.0 + np.asarray(z)) / 5.0) ** -5.4


def _draw_lls_log_nhi(rng: np.random.Generator) -> float:
    a, b = (10 ** ((1 - LLS_BETA) * n) for n in LLS_LOGN)
    return float(np.log10(a + rng.random() * (b - a)) / (1 - LLS_BETA))


class SpectraSimulator:
    def __init__(self, cfg: SpectraMockConfig | None = None):
        self.cfg = cfg or SpectraMockConfig()
        self.tau0 = _Tau0Table(self.cfg.lognormal_sigma)
        n = self.cfg.stop_index - self.cfg.start_index
        self.index = self.cfg.start_index + np.arange(n)
        self.loglam = self.index * LOGLAM_STEP
        self.wave = 10**self.loglam
        s = self.cfg.subsample
        offsets = (np.arange(s) + 0.5) / s - 0.5
        self.wave_fine = 10 ** ((self.index[:, None] + offsets[None, :]) * LOGLAM_STEP).ravel()
        self._dz = np.linspace(0.0, 6.0, 601)
        self._x = np.concatenate(
            [[0.0], np.cumsum(0.5 * np.diff(self._dz) * (_dx_dz(self._dz[1:]) + _dx_dz(self._dz[:-1])))]
        )
        # Lyman-limit systems per unit z: the measured tau >= 2 incidence less the mock's own
        # DLAs and sub-DLAs at the real (unboosted) incidence.
        own = self.cfg.dla_incidence_x * (1.0 + SUBDLA_PER_DLA) * _dx_dz(self._dz)
        self._lls_rate = np.clip(lls_incidence(self._dz) - own, 0.0, None)
        # IGM Lyman continuum: tau(lambda) = (lambda/912)^1.5 [H(z_qso) - H(lambda/912 - 1)],
        # H(z) = integral of kappa(z') (1+z')^-1.5 dz', kappa the diffuse dtau/dz at 912 A.
        from astropy.cosmology import Planck18

        dl_dz = (C_KMS / Planck18.H(self._dz).value) / (1.0 + self._dz)  # proper Mpc per unit z
        kappa = IGM_DIFFUSE_SHARE * dl_dz / mean_free_path_mpc(self._dz) * (1.0 + self._dz) ** -IGM_NU_INDEX
        self._igm_h = np.concatenate([[0.0], np.cumsum(0.5 * np.diff(self._dz) * (kappa[1:] + kappa[:-1]))])

    def absorption_path_x(self, z_lo: float, z_hi: float) -> float:
        return float(np.interp(z_hi, self._dz, self._x) - np.interp(z_lo, self._dz, self._x))

    def draw_absorbers(self, rng: np.random.Generator, z_qso: float, boost: float) -> list[Absorber]:
        """Poisson absorbers along the path where their Ly-alpha lies in the forest."""
        z_lo = max(self.wave[0] / LYA[0] - 1.0, (1 + z_qso) * LYMAN_LIMIT / LYA[0] - 1.0)
        z_hi = z_qso - 3000.0 / C_KMS * (1 + z_qso)
        if z_hi <= z_lo:
            return []
        dx = self.absorption_path_x(z_lo, z_hi)
        absorbers = []
        for kind, rate in (("dla", 1.0), ("subdla", SUBDLA_PER_DLA)):
            n = rng.poisson(self.cfg.dla_incidence_x * rate * boost * dx)
            # Place them uniformly in absorption distance X.
            x_lo = np.interp(z_lo, self._dz, self._x)
            xs = x_lo + rng.random(n) * dx
            for x in xs:
                z = float(np.interp(x, self._x, self._dz))
                absorbers.append(Absorber(z_abs=z, log_nhi=_draw_log_nhi(rng, kind), b_kms=float(rng.uniform(20, 40))))
        return sorted(absorbers, key=lambda a: a.z_abs)

    def draw_lyman_limit_systems(self, rng: np.random.Generator, z_qso: float) -> list[Absorber]:
        """Poisson Lyman-limit systems (log N 17.5-19.3) from the blue end to 3,000 km/s short
        of the quasar, by thinning the incidence at its maximum on the path."""
        z_lo = self.wave[0] / LYA[0] - 1.0
        z_hi = z_qso - 3000.0 / C_KMS * (1 + z_qso)
        if z_hi <= z_lo:
            return []
        peak = float(np.interp(z_hi, self._dz, self._lls_rate))
        if peak <= 0:
            return []
        zs = z_lo + rng.random(rng.poisson(peak * (z_hi - z_lo))) * (z_hi - z_lo)
        keep = zs[rng.random(zs.size) * peak < np.interp(zs, self._dz, self._lls_rate)]
        return [
            Absorber(z_abs=float(z), log_nhi=_draw_lls_log_nhi(rng), b_kms=float(rng.uniform(20, 40)))
            for z in np.sort(keep)
        ]

    def igm_continuum_tau(self, z_qso: float, wave: np.ndarray) -> np.ndarray:
        """Mean Lyman-continuum optical depth of the diffuse IGM (systems thinner than 10^17.5)
        between each wavelength's 912 A redshift and the quasar."""
        z_912 = wave / LYMAN_LIMIT - 1.0
        h_qso = float(np.interp(z_qso, self._dz, self._igm_h))
        tau = (wave / LYMAN_LIMIT) ** IGM_NU_INDEX * (h_qso - np.interp(np.clip(z_912, 0, None), self._dz, self._igm_h))
        return np.where(z_912 < z_qso, np.clip(tau, 0.0, None), 0.0)

    def continuum(self, rng: np.random.Generator, z_qso: float) -> np.ndarray:
        rest = self.wave / (1 + z_qso)
        slope = -1.5 + rng.normal(0, 0.3)
        level = 10 ** rng.uniform(np.log10(2.0), np.log10(20.0))
        cont = level * (rest / 1450.0) ** slope
        for lam, ew, sigma_kms in EMISSION_LINES:
            ew_i = ew * 10 ** rng.normal(0, 0.2)
            sigma = lam * sigma_kms / C_KMS
            at_line = level * (lam / 1450.0) ** slope
            cont += at_line * ew_i / (np.sqrt(2 * np.pi) * sigma) * np.exp(-0.5 * ((rest - lam) / sigma) ** 2)
        return cont

    def forest_tau(self, rng: np.random.Generator, z_qso: float) -> np.ndarray:
        """Ly-alpha (+ Ly-beta) forest optical depth on the fine grid."""
        cfg = self.cfg
        # Gaussian field on the Ly-alpha "gas" grid, extended red-ward by the Ly-beta/alpha offset.
        shift = np.log10(LYA[0] / LYB[0]) / LOGLAM_STEP
        n = self.index.size + int(np.ceil(shift)) + 2
        white = rng.normal(0, 1, n)
        k = np.fft.rfftfreq(n)
        g = np.fft.irfft(np.fft.rfft(white) * np.exp(-0.5 * (2 * np.pi * k * cfg.forest_smoothing_px) ** 2), n)
        g /= g.std()
        s = cfg.subsample
        pos = (np.arange(self.index.size * s) + 0.5) / s - 0.5
        field_alpha = np.interp(pos, np.arange(n), g)
        field_beta = np.interp(pos + shift, np.arange(n), g)
        tau = np.zeros(self.wave_fine.size)
        lya_limit = LYA[0] * (1 + z_qso)
        lyb_limit = LYB[0] * (1 + z_qso)
        for fld, line, limit, scale in (
            (field_alpha, LYA, lya_limit, 1.0),
            (field_beta, LYB, lyb_limit, TAU_BETA_OVER_ALPHA),
        ):
            inside = self.wave_fine < limit
            z_gas = self.wave_fine[inside] / line[0] - 1.0
            ok = z_gas > 0
            t0 = self.tau0(tau_eff(z_gas[ok]))
            contrib = np.zeros(inside.sum())
            contrib[ok] = scale * t0 * np.exp(cfg.lognormal_sigma * fld[inside][ok] - cfg.lognormal_sigma**2 / 2)
            tau[inside] += contrib
        return tau

    def _lsf(self, spectrum: np.ndarray) -> np.ndarray:
        sigma = self.cfg.lsf_fwhm_px / 2.3548
        half = int(np.ceil(4 * sigma))
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
        kernel /= kernel.sum()
        padded = np.pad(spectrum, half, mode="edge")
        return np.convolve(padded, kernel, mode="valid")

    def simulate(
        self,
        index: int,
        seed: int,
        z_qso: float | None = None,
        dla_boost: float = 1.0,
        absorbers: list[Absorber] | None = None,
    ) -> MockSightline:
        cfg = self.cfg
        rng = np.random.default_rng([seed, index])
        z_qso = float(rng.uniform(*cfg.z_range)) if z_qso is None else float(z_qso)
        snr = float(np.exp(rng.uniform(np.log(cfg.snr_range[0]), np.log(cfg.snr_range[1]))))
        cont = self.continuum(rng, z_qso)
        absorbers = self.draw_absorbers(rng, z_qso, dla_boost) if absorbers is None else absorbers
        tau = self.forest_tau(rng, z_qso) if cfg.forest else np.zeros(self.wave_fine.size)
        for absorber in absorbers:
            tau += absorber_tau(self.wave_fine, absorber)
        # Lyman-limit systems from a stream of their own, so that the rest of a sightline does
        # not depend on whether they are on
        lls = (
            self.draw_lyman_limit_systems(np.random.default_rng([seed, index, 912]), z_qso)
            if cfg.lyman_limit_systems
            else []
        )
        for system in lls:
            tau += absorber_tau(self.wave_fine, system)
        if cfg.igm_continuum:
            tau += self.igm_continuum_tau(z_qso, self.wave_fine)
        transmission = np.exp(-tau).reshape(self.index.size, cfg.subsample).mean(axis=1)
        model = self._lsf(cont * transmission)
        continuum = self._lsf(cont)
        rest = self.wave / (1 + z_qso)
        window = (rest >= 1420) & (rest <= 1480)
        level = np.median(continuum[window]) if window.any() else np.median(continuum)
        sigma = level / snr * np.sqrt(1.0 + 0.6 * (4000.0 / self.wave) ** 4)
        and_mask = np.zeros(self.index.size, dtype=np.int32)
        for sky in (5577.3, 5891.6, 6300.3, 6863.9, 7246.0, 7913.7, 8344.6, 8827.1, 9376.0):
            near = np.abs(self.wave - sky) < 4.0
            sigma[near] *= 3.0
            and_mask[near] |= BRIGHTSKY
        ivar = 1.0 / sigma**2
        flux = model + rng.normal(0, 1, self.index.size) * sigma if cfg.noise else model.copy()
        if cfg.masks:
            for _ in range(int(rng.integers(0, 4))):
                start = int(rng.integers(0, self.index.size - 40))
                stop = start + int(rng.integers(5, 41))
                ivar[start:stop] = 0.0
                and_mask[start:stop] |= FULLREJECT
        return MockSightline(
            index=index,
            z_qso=z_qso,
            snr_target=snr,
            dla_boost=dla_boost,
            loglam=self.loglam,
            flux=flux.astype(np.float32),
            ivar=ivar.astype(np.float32),
            and_mask=and_mask,
            model=model.astype(np.float32),
            continuum=continuum.astype(np.float32),
            absorbers=absorbers,
            lyman_limit_systems=lls,
        )


def sdss_ids(index: int, seed: int) -> tuple[int, int, int, int]:
    """(plate, mjd, fiber, thing_id) for mock sightline ``index``: distinct across seeds < 250."""
    plate = 4000 + 20 * (seed % 250) + index // 1000
    return plate, 55000 + plate % 3000, index % 1000 + 1, (seed % 2000) * 1_000_000 + index


def sky_position(index: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng([seed, index, 7])
    ra = float(rng.uniform(0, 360))
    dec = float(np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-10)), np.sin(np.radians(70))))))
    return ra, dec


def speclite_hdulist(sightline: MockSightline, seed: int):
    """An SDSS spec-lite HDU list: PRIMARY, COADD, SPECOBJ."""
    from astropy.io import fits

    plate, mjd, fiber, thing_id = sdss_ids(sightline.index, seed)
    ra, dec = sky_position(sightline.index, seed)
    primary = fits.PrimaryHDU()
    h = primary.header
    h["TELESCOP"] = "SDSS 2.5-M"
    h["PLATEID"], h["MJD"], h["FIBERID"] = plate, mjd, fiber
    h["PLUG_RA"], h["PLUG_DEC"] = ra, dec
    h["MOCK"] = (True, "galaxylab mock sightline")
    n = sightline.flux.size
    coadd = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="flux", format="E", array=sightline.flux),
            fits.Column(name="loglam", format="E", array=sightline.loglam.astype(np.float32)),
            fits.Column(name="ivar", format="E", array=sightline.ivar),
            fits.Column(name="and_mask", format="J", array=sightline.and_mask),
            fits.Column(name="or_mask", format="J", array=sightline.and_mask),
            fits.Column(name="wdisp", format="E", array=np.full(n, 1.0, np.float32)),
            fits.Column(name="sky", format="E", array=np.zeros(n, np.float32)),
            fits.Column(name="model", format="E", array=sightline.model),
        ],
        name="COADD",
    )
    specobj = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="PLATE", format="J", array=[plate]),
            fits.Column(name="MJD", format="J", array=[mjd]),
            fits.Column(name="FIBERID", format="J", array=[fiber]),
            fits.Column(name="PLUG_RA", format="D", array=[ra]),
            fits.Column(name="PLUG_DEC", format="D", array=[dec]),
            fits.Column(name="Z", format="E", array=[sightline.z_qso]),
            fits.Column(name="Z_ERR", format="E", array=[0.001]),
            fits.Column(name="ZWARNING", format="J", array=[0]),
            fits.Column(name="CLASS", format="6A", array=["QSO"]),
            fits.Column(name="THING_ID", format="J", array=[thing_id]),
            fits.Column(name="SN_MEDIAN_ALL", format="E", array=[sightline.snr_target]),
        ],
        name="SPECOBJ",
    )
    return fits.HDUList([primary, coadd, specobj])


def _write_chunk(
    indices: list[int], seed: int, dla_boost: float, outdir: str, snr_range: tuple[float, float] = (3.0, 30.0)
) -> tuple[list, list]:
    from pathlib import Path

    sim = SpectraSimulator(SpectraMockConfig(snr_range=snr_range))
    sightline_rows, absorber_rows = [], []
    for i in indices:
        s = sim.simulate(i, seed, dla_boost=dla_boost)
        plate, mjd, fiber, thing_id = sdss_ids(i, seed)
        ra, dec = sky_position(i, seed)
        speclite_hdulist(s, seed).writeto(Path(outdir) / f"spec-{plate:04d}-{mjd:05d}-{fiber:04d}.fits", overwrite=True)
        n_dla = sum(a.kind == "dla" for a in s.absorbers)
        sightline_rows.append(
            (plate, mjd, fiber, thing_id, ra, dec, s.z_qso, s.snr_target, dla_boost, n_dla, len(s.absorbers) - n_dla)
        )
        absorber_rows += [(plate, mjd, fiber, a.z_abs, a.log_nhi, a.kind, a.b_kms) for a in s.absorbers]
    return sightline_rows, absorber_rows


def write_spectra_mock(
    outdir,
    n: int,
    seed: int,
    *,
    dla_boost: float = 1.0,
    snr_range: tuple[float, float] = (3.0, 30.0),
    workers: int = 1,
    on_progress=None,
) -> None:
    """Writes ``spectra/spec-PLATE-MJD-FIBER.fits``, ``sightlines_truth.csv``, ``absorbers_truth.csv``
    (S/N per pixel at rest 1420-1480 A log-uniform in ``snr_range``)."""
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    from astropy.table import Table

    from mlworker.synthetic import usable_workers

    out = Path(outdir)
    (out / "spectra").mkdir(parents=True, exist_ok=True)
    chunks = [list(range(a, min(a + 100, n))) for a in range(0, n, 100)]
    results = []
    if usable_workers(workers) <= 1:
        for chunk in chunks:
            results.append(_write_chunk(chunk, seed, dla_boost, str(out / "spectra"), snr_range))
            if on_progress:
                on_progress(len(chunk))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(_write_chunk, chunk, seed, dla_boost, str(out / "spectra"), snr_range) for chunk in chunks
            ]
            for chunk, future in zip(chunks, futures, strict=True):
                results.append(future.result())
                if on_progress:
                    on_progress(len(chunk))
    sightlines = [row for rows, _ in results for row in rows]
    absorbers = [row for _, rows in results for row in rows]
    Table(
        rows=sightlines,
        names=("plate", "mjd", "fiber", "thing_id", "ra", "dec", "z_qso", "snr", "dla_boost", "n_dla", "n_subdla"),
    ).write(out / "sightlines_truth.csv", format="ascii.csv", overwrite=True)
    absorber_table = Table(
        rows=absorbers or None,
        names=("plate", "mjd", "fiber", "z_abs", "log_nhi", "type", "b_kms"),
        dtype=(int, int, int, float, float, "U6", float),
    )
    absorber_table.write(out / "absorbers_truth.csv", format="ascii.csv", overwrite=True)


def _scan_chunk(indices: list[int], seed: int, dla_boost: float, snr_range: tuple[float, float]) -> list[tuple]:
    from mlworker.ml.continuum import continuum_estimate
    from mlworker.ml.dla import lyman_limit_flux, scan_input

    sim = SpectraSimulator(SpectraMockConfig(snr_range=snr_range))
    rows = []
    for i in indices:
        s = sim.simulate(i, seed, dla_boost=dla_boost)
        start = sim.cfg.start_index
        continuum = continuum_estimate(start, s.flux, s.ivar, s.z_qso)  # estimated, as on real spectra
        x, covered = scan_input(start, s.flux, s.ivar, s.z_qso, continuum)
        limit = lyman_limit_flux(start, s.flux, s.ivar, s.z_qso, continuum).astype(np.float16)
        plate, mjd, fiber, _ = sdss_ids(i, seed)
        rows.append((x, covered, s.z_qso, s.snr_target, f"{plate}-{mjd}-{fiber}", s.absorbers, limit))
    return rows


def dla_mock_data(
    n: int,
    seed: int,
    *,
    dla_boost: float = 1.0,
    snr_range: tuple[float, float] = (3.0, 30.0),
    test_fraction: float = 0.0,
    validation_fraction: float = 0.0,
    workers: int = 1,
    on_progress=None,
):
    """Mock sightlines as a ``DLAData`` (scan inputs and their true absorbers); the last
    ``test_fraction`` are held out, the ``validation_fraction`` before them validate."""
    from concurrent.futures import ProcessPoolExecutor

    from mlworker.ml.dla import DLAData
    from mlworker.synthetic import usable_workers

    chunks = [list(range(a, min(a + 50, n))) for a in range(0, n, 50)]
    rows = []
    if usable_workers(workers) <= 1:
        for chunk in chunks:
            rows += _scan_chunk(chunk, seed, dla_boost, snr_range)
            if on_progress:
                on_progress(len(chunk))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_scan_chunk, chunk, seed, dla_boost, snr_range) for chunk in chunks]
            for chunk, future in zip(chunks, futures, strict=True):
                rows += future.result()
                if on_progress:
                    on_progress(len(chunk))
    n_test = int(round(test_fraction * n))
    n_val = int(round(validation_fraction * n))
    is_test = np.arange(n) >= n - n_test
    is_validation = (np.arange(n) >= n - n_test - n_val) & ~is_test
    absorbers = [(i, a.z_abs, a.log_nhi) for i, row in enumerate(rows) for a in row[5]]
    return DLAData(
        x=np.stack([r[0] for r in rows]),
        covered=np.stack([r[1] for r in rows]),
        z_qso=np.array([r[2] for r in rows]),
        snr=np.array([r[3] for r in rows]),
        sightline_ids=np.array([r[4] for r in rows]),
        absorber_sightline=np.array([a[0] for a in absorbers], dtype=np.int64),
        absorber_z=np.array([a[1] for a in absorbers], dtype=float),
        absorber_log_nhi=np.array([a[2] for a in absorbers], dtype=float),
        is_test=is_test,
        is_validation=is_validation,
        lyman_limit=np.stack([r[6] for r in rows]),
    )


def insert_absorbers(
    start_index: int, flux: np.ndarray, ivar: np.ndarray, z_qso: float, rng: np.random.Generator, boost: float
) -> tuple[np.ndarray, list[Absorber]]:
    """A real sightline free of DLAs with mock absorbers (Voigt profiles in Lyman alpha and beta,
    and their Lyman-limit absorption) inserted: the flux is multiplied by the transmission T
    and Gaussian noise of sigma sqrt(1 - T^2) is added, so each pixel keeps its noise."""
    sim = SpectraSimulator()
    absorbers = sim.draw_absorbers(rng, z_qso, boost)
    wave = 10 ** ((start_index + np.arange(flux.size)) * LOGLAM_STEP)
    tau = np.zeros(flux.size)
    for absorber in absorbers:
        tau += absorber_tau(wave, absorber)
    transmission = np.exp(-tau)
    sigma = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), 0.0)
    noise = rng.normal(0.0, 1.0, flux.size) * sigma * np.sqrt(1.0 - transmission**2)
    return (flux * transmission + noise).astype(np.float32), absorbers
