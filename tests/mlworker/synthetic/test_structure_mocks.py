"""The emulator's mocks: the conventions shared by truth, fitter and emulator, and their noise."""

import numpy as np

from mlworker.ml.sersic_fit import FitSettings, _Renderer, sersic_total_flux
from mlworker.synthetic.galaxies import GalaxyMockConfig
from mlworker.synthetic.structure import StructureParams, add_noise, draw_structures, render_clean

CFG = GalaxyMockConfig()


def one_galaxy(n_index: float, r_e: float, q: float, mag: float = 20.0, pa: float = 30.0) -> StructureParams:
    nan = np.array([np.nan])
    return StructureParams(
        kind=np.array(["disk"]),
        mag=np.array([mag]),
        sersic_n=np.array([n_index]),
        r_e_arcsec=np.array([r_e]),
        q=np.array([q]),
        pa_deg=np.array([pa]),
        bt=nan,
        bulge_r_e_arcsec=nan,
        bulge_q=nan,
        disk_r_e_arcsec=nan,
        dx_pix=np.array([0.0]),
        dy_pix=np.array([0.0]),
    )


def test_a_small_galaxy_keeps_its_total_flux_in_the_stamp():
    clean = render_clean(one_galaxy(1.0, 0.2, 0.6))[0]
    flux = 10 ** (-0.4 * (20.0 - CFG.zero_point_ab))
    assert abs(clean.sum() / flux - 1) < 0.01


def test_galsim_truth_and_the_fitters_sersic2d_describe_the_same_galaxy():
    """r_e along the major axis, q = b/a, PA from +x, total flux of the untruncated profile:
    the GalSim mock and astropy's Sersic2D (PSF-convolved by the fitter's renderer) agree
    pixel by pixel."""
    for n_index, r_e, q in ((1.0, 0.4, 0.5), (4.0, 0.3, 0.8)):
        clean = render_clean(one_galaxy(n_index, r_e, q))[0].astype(float)
        settings = FitSettings()
        centre = ((clean.shape[1] - 1) / 2, (clean.shape[0] - 1) / 2)
        renderer = _Renderer(clean.shape, settings, centre)
        r_px = r_e / settings.pixel_scale_arcsec
        flux = 10 ** (-0.4 * (20.0 - CFG.zero_point_ab))
        amplitude = flux / sersic_total_flux(1.0, r_px, n_index, q)
        model = renderer(amplitude, r_px, n_index, centre[0], centre[1], 1 - q, np.radians(30.0))
        residual = np.abs(model - clean).max() / clean.max()
        assert residual < 0.01, (n_index, residual)
        assert abs(model.sum() / clean.sum() - 1) < 0.01


def test_kinds_follow_n_and_composites_have_no_single_sersic_truth():
    p = draw_structures(400, 3)
    single = p.kind != "bulge_disk"
    assert np.all(p.sersic_n[p.kind == "bulge"] >= 2.5) and np.all(p.sersic_n[p.kind == "disk"] <= 1.5)
    assert np.all((p.sersic_n[p.kind == "intermediate"] > 1.5) & (p.sersic_n[p.kind == "intermediate"] < 2.5))
    assert np.isnan(p.sersic_n[~single]).all() and np.isnan(p.r_e_arcsec[~single]).all()
    assert np.all((p.bt[~single] >= 0.2) & (p.bt[~single] <= 0.8))
    assert 0.15 < (~single).mean() < 0.35
    again = draw_structures(400, 3)
    assert np.array_equal(p.mag, again.mag) and np.array_equal(p.kind, again.kind)


def test_noise_is_the_survey_mocks_sky_plus_poisson():
    blank = np.zeros((8, 64, 64), dtype=np.float32)
    sky = add_noise(blank, 1)
    assert abs(sky.std() / CFG.background_sigma - 1) < 0.02
    bright = np.full((8, 64, 64), 3.0, dtype=np.float32)
    noisy = add_noise(bright, 1) - bright
    expected = np.sqrt(CFG.background_sigma**2 + 3.0 / CFG.exposure_time_s)
    assert abs(noisy.std() / expected - 1) < 0.02
    assert not np.array_equal(add_noise(blank, 1), add_noise(blank, 2))


def _render_in(queue, workers):
    p = draw_structures(6, 5)
    queue.put(render_clean(p, workers=workers).shape)


def test_a_daemonic_process_renders_in_its_own_process():
    """A Celery prefork child is daemonic and may not start processes: asked for two workers, a
    generator there renders serially instead of failing."""
    import multiprocessing

    from mlworker.synthetic import usable_workers

    assert usable_workers(2) == 2 and usable_workers(0) == 1
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_render_in, args=(queue, 2), daemon=True)
    child.start()
    shape = queue.get(timeout=120)
    child.join(timeout=30)
    assert child.exitcode == 0 and shape[0] == 6
