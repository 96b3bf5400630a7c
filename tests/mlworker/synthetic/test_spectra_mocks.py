"""The quasar mocks obey the physics the README promises."""

import numpy as np
import pytest
from astropy.table import Table

from mlworker.synthetic import spectra as S


def test_forest_mean_flux_follows_tau_eff_within_10_percent():
    sim = S.SpectraSimulator(S.SpectraMockConfig(noise=False, masks=False))
    zs, transmission = [], []
    for i in range(120):
        s = sim.simulate(i, seed=4, dla_boost=0.0)
        rest = sim.wave / (1 + s.z_qso)
        forest = (rest > 1040) & (rest < 1190)
        zs.append(sim.wave[forest] / S.LYA[0] - 1)
        transmission.append(s.model[forest] / s.continuum[forest])
    zs, transmission = np.concatenate(zs), np.concatenate(transmission)
    for lo in np.arange(2.0, 4.0, 0.25):
        sel = (zs >= lo) & (zs < lo + 0.25)
        assert sel.sum() > 2000
        expected = np.exp(-S.tau_eff(zs[sel])).mean()
        assert transmission[sel].mean() == pytest.approx(expected, rel=0.10), lo


@pytest.mark.parametrize("log_nhi", [19.5, 20.3, 21.0, 21.8])
def test_dla_equivalent_width_equals_voigt(log_nhi):
    sim = S.SpectraSimulator(
        S.SpectraMockConfig(noise=False, masks=False, forest=False, lyman_limit_systems=False, igm_continuum=False)
    )
    z_abs = 2.9
    s = sim.simulate(0, seed=1, z_qso=3.5, absorbers=[S.Absorber(z_abs, log_nhi, 30.0)])
    window = np.abs(sim.wave / (1 + z_abs) - S.LYA[0]) < 150.0
    measured = np.sum((1 - s.model / s.continuum)[window] * np.gradient(sim.wave)[window]) / (1 + z_abs)
    assert measured == pytest.approx(S.voigt_equivalent_width(log_nhi, 30.0, half_width=150.0), rel=0.01)
    # And the Voigt width itself follows the damping-wing law W = (lambda^2/c) 2 sqrt(pi C) for DLAs.
    if log_nhi >= 20.3:
        lam, f, gamma = S.LYA
        damping = 10**log_nhi * S.SIGMA0 * f * gamma / (4 * np.pi**2)
        analytic = 2 * np.sqrt(np.pi * damping) * (lam * 1e-8) ** 2 / S.C_CMS * 1e8
        assert S.voigt_equivalent_width(log_nhi, 30.0) == pytest.approx(analytic, rel=0.02)


def test_dla_incidence_and_column_density_distribution():
    sim = S.SpectraSimulator()
    rng = np.random.default_rng(9)
    n_dla, path, log_n = 0, 0.0, []
    for _ in range(3000):
        z_qso = rng.uniform(2.2, 4.5)
        absorbers = sim.draw_absorbers(rng, z_qso, boost=1.0)
        z_lo = max(sim.wave[0] / S.LYA[0] - 1.0, (1 + z_qso) * S.LYMAN_LIMIT / S.LYA[0] - 1.0)
        path += sim.absorption_path_x(z_lo, z_qso - 3000.0 / S.C_KMS * (1 + z_qso))
        dlas = [a for a in absorbers if a.kind == "dla"]
        n_dla += len(dlas)
        log_n += [a.log_nhi for a in absorbers]
    assert n_dla / path == pytest.approx(0.05, rel=0.1)
    log_n = np.array(log_n)
    dla = log_n[log_n >= 20.3]
    assert dla.min() >= 20.3 and dla.max() <= 22.0
    # f(N) ~ N^-2: the number per dex falls by 10x per dex.
    per_dex = [((dla >= a) & (dla < a + 0.5)).sum() for a in (20.3, 20.8)]
    assert per_dex[0] / per_dex[1] == pytest.approx(10**0.5, rel=0.2)
    sub = log_n[log_n < 20.3]
    assert sub.size / dla.size == pytest.approx(S.SUBDLA_PER_DLA, rel=0.15)


def test_written_truth_and_noise(mock_spectra):
    sightlines = Table.read(mock_spectra / "sightlines_truth.csv")
    absorbers = Table.read(mock_spectra / "absorbers_truth.csv")
    assert len(sightlines) == 24 and np.all(sightlines["dla_boost"] == 4.0)
    assert np.all((sightlines["z_qso"] >= 2.2) & (sightlines["z_qso"] <= 4.5))
    assert np.all((sightlines["snr"] >= 3) & (sightlines["snr"] <= 30))
    assert len(absorbers) == sightlines["n_dla"].sum() + sightlines["n_subdla"].sum()
    sim = S.SpectraSimulator()
    s = sim.simulate(3, seed=6, dla_boost=0.0)
    noise = (s.flux - s.model)[s.ivar > 0] * np.sqrt(s.ivar[s.ivar > 0])
    assert np.std(noise) == pytest.approx(1.0, rel=0.05)


def test_lyman_limit_systems_follow_the_measured_incidence_with_the_mocks_own_absorbers():
    sim = S.SpectraSimulator()
    rng = np.random.default_rng(12)
    z_qso = 4.4
    lls, own = [], []
    for _ in range(1500):
        lls += [a.z_abs for a in sim.draw_lyman_limit_systems(rng, z_qso)]
        own += [a.z_abs for a in sim.draw_absorbers(rng, z_qso, boost=1.0)]
    lls, own = np.array(lls), np.array(own)
    for lo in (3.4, 3.8, 4.1):  # all tau >= 2 systems per unit z, against the measured l(z)
        n = ((lls >= lo) & (lls < lo + 0.2)).sum() + ((own >= lo) & (own < lo + 0.2)).sum()
        assert n / (1500 * 0.2) == pytest.approx(float(S.lls_incidence(lo + 0.1)), rel=0.1), lo
    log_n = np.array([S._draw_lls_log_nhi(rng) for _ in range(4000)])
    assert log_n.min() >= 17.5 and log_n.max() <= 19.3
    # f(N) ~ N^-0.8: the number per half dex grows as N^0.2, 10^0.2 from 17.5-18 to 18.5-19
    lower = ((log_n >= 17.5) & (log_n < 18.0)).sum()
    upper = ((log_n >= 18.5) & (log_n < 19.0)).sum()
    assert upper / lower == pytest.approx(10**0.2, rel=0.15)


def test_igm_lyman_continuum_darkens_blueward_of_the_quasars_912():
    sim = S.SpectraSimulator(S.SpectraMockConfig(noise=False, masks=False, forest=False, lyman_limit_systems=False))
    for z_qso in (3.5, 4.4):
        s = sim.simulate(0, 2, z_qso=z_qso, absorbers=[])
        rest = sim.wave / (1 + z_qso)
        transmission = s.model / s.continuum
        red = (rest > 915) & (rest < 1000)
        assert transmission[red].min() > 0.99  # nothing red-ward of the quasar's Lyman limit
        blue = transmission[(rest > 700) & (rest < 905) & (sim.wave > 3700)]
        assert np.all(np.diff(blue) > -1e-3)  # darker the further blue-ward (after the LSF)
    # tau at 880 A rest: the diffuse 60% of (dl/dz)/lambda_mfp over the ~dz it spans, to 25%
    z_qso = 4.0
    wave = np.array([880.0 * (1 + z_qso)])
    from astropy.cosmology import Planck18

    dz = (1 + z_qso) * (1 - 880.0 / S.LYMAN_LIMIT)
    z_mid = z_qso - dz / 2
    dl_dz = S.C_KMS / Planck18.H(z_mid).value / (1 + z_mid)
    expected = 0.6 * dl_dz / S.mean_free_path_mpc(z_mid) * dz
    assert sim.igm_continuum_tau(z_qso, wave)[0] == pytest.approx(expected, rel=0.25)
