"""The GALFIT emulator's pieces on tiny tensors: targets and predictions invert each other,
the heteroscedastic loss, kind labels, metrics; and a tiny training run end to end."""

import numpy as np
import torch

from mlworker.ml.emulator import (
    KINDS,
    EmulatorCNN,
    EmulatorConfig,
    EmulatorData,
    beta_nll,
    kind_labels,
    nmad,
    normalise,
    photometric_reference,
    predict,
    psf_moment_variance,
    references,
    roc_auc,
    structure_metrics,
    targets,
    train,
)
from mlworker.synthetic.structure import emulator_mock_data


def small_data(n_train=48, n_test=16, seed=1) -> EmulatorData:
    return emulator_mock_data(n_train, n_test, seed, validation_fraction=0.1)


def test_network_shapes():
    model = EmulatorCNN(channels=(4, 8), hidden=8)
    mean, log_sigma, logits = model(torch.zeros(3, 1, 64, 64))
    assert mean.shape == (3, 4) and log_sigma.shape == (3, 4) and logits.shape == (3, 3)


class Oracle(torch.nn.Module):
    """Returns given standardised outputs, batch by batch (to test predict's inversion)."""

    def __init__(self, outputs: torch.Tensor):
        super().__init__()
        self.outputs, self.seen = outputs, 0

    def forward(self, x):
        out = self.outputs[self.seen : self.seen + len(x)]
        self.seen += len(x)
        return out, torch.full_like(out, -1.0), torch.zeros(len(x), 3)


def test_predict_inverts_the_training_targets():
    data = small_data()
    y = targets(data)
    single = np.isfinite(y).all(axis=1)
    centre, scale = np.nanmean(y, axis=0), np.nanstd(y, axis=0)
    standardised = torch.from_numpy(np.nan_to_num((y - centre) / scale)).float()
    checkpoint = {"target_centre": centre.tolist(), "target_scale": scale.tolist(), "pixel_scale_arcsec": 0.06}
    out = predict(checkpoint, data.images, data.zero_point_ab, device=torch.device("cpu"), model=Oracle(standardised))
    assert np.allclose(out["mag"][single], data.mag[single], atol=1e-3)
    assert np.allclose(out["r_e_arcsec"][single], data.r_e_arcsec[single], rtol=1e-3)
    assert np.allclose(out["sersic_n"][single], data.sersic_n[single], rtol=1e-3)
    assert np.allclose(out["q"][single], data.q[single], atol=1e-4)
    assert np.allclose(out["log_n_err"], np.exp(-1.0) * scale[2], rtol=1e-5)


def test_predict_adds_the_photometric_references_back():
    """A version that learnt corrections to the references predicts reference + correction."""
    data = small_data()
    offsets = references(torch.from_numpy(normalise(data.images, subtract_background=False))[:, None], psf_variance=2.2)
    y = targets(data) - offsets
    single = np.isfinite(y).all(axis=1)
    centre, scale = np.nanmean(y, axis=0), np.nanstd(y, axis=0)
    standardised = torch.from_numpy(np.nan_to_num((y - centre) / scale)).float()
    checkpoint = {
        "target_centre": centre.tolist(),
        "target_scale": scale.tolist(),
        "pixel_scale_arcsec": 0.06,
        "photometric_reference": ["mag", "log_r_e", "q"],
        "reference_psf_variance_px2": 2.2,
        "config": {"subtract_background": False},
    }
    out = predict(checkpoint, data.images, data.zero_point_ab, device=torch.device("cpu"), model=Oracle(standardised))
    assert np.allclose(out["mag"][single], data.mag[single], atol=1e-3)
    assert np.allclose(out["r_e_arcsec"][single], data.r_e_arcsec[single], rtol=1e-3)
    assert np.allclose(out["q"][single], data.q[single], atol=1e-4)


def _stamp(profile: np.ndarray) -> torch.Tensor:
    """A noiseless stamp in units of the sky sigma, normalised as the network sees it."""
    return torch.from_numpy(np.arcsinh(profile / 3.0).astype(np.float32))[None, None]


def test_photometric_reference_reads_aperture_magnitude_and_half_light_radius():
    size = 64
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2)
    r_e = 5.0
    b = 1.678  # exponential profile: half the light within r_e
    profile = np.exp(-b * r / r_e)
    profile *= 5000.0 / profile.sum()  # 5000 sky sigmas in all
    mag, log_r, q = photometric_reference(_stamp(profile))[0].tolist()
    assert abs(mag + 2.5 * np.log10(profile[r <= 10.0].sum())) < 1e-3
    assert abs(10**log_r / r_e - 1) < 0.05  # the curve of growth, sampled on pixels
    assert q > 0.98  # round
    # an elongated galaxy: the round weight makes the moments rounder, never flatter
    dy, dx = yy - (size - 1) / 2, xx - (size - 1) / 2
    flat = np.exp(-b * np.sqrt((dx / 1.0) ** 2 + (dy / 0.4) ** 2) / r_e)
    q_flat = photometric_reference(_stamp(flat * 5000.0 / flat.sum()))[0, 2].item()
    assert 0.4 < q_flat < 0.6
    # adaptive moments follow the light's own ellipticity, whatever the radial profile
    q_adaptive = photometric_reference(_stamp(flat * 5000.0 / flat.sum()), psf_variance=0.0)[0, 2].item()
    assert abs(q_adaptive - 0.4) < 0.01
    # circular apertures and moments about the centre: the 8 rotations/flips change nothing
    rng = np.random.default_rng(0)
    lumpy = flat * (1 + 0.3 * rng.random((size, size)))
    for psf_variance in (None, 2.0):
        ref = photometric_reference(_stamp(lumpy), psf_variance)
        for view in (np.rot90(lumpy), lumpy[::-1], lumpy.T):
            assert torch.allclose(
                photometric_reference(_stamp(np.ascontiguousarray(view)), psf_variance), ref, atol=1e-4
            )
    # a blank stamp stays finite: the flux is floored at the aperture's noise
    assert torch.isfinite(photometric_reference(_stamp(np.zeros((size, size))))).all()


def test_psf_correction_of_the_adaptive_moments():
    """A Gaussian galaxy convolved with a Gaussian PSF: the adaptive moments less the PSF's own
    give the galaxy's axis ratio; a Moffat of large beta is a Gaussian (plus the pixel's 1/12)."""
    size = 64
    psf_sigma = 1.3
    assert abs(psf_moment_variance(2.3548 * psf_sigma, beta=200.0) - (psf_sigma**2 + 1 / 12)) < 0.02
    assert psf_moment_variance(3.0) > psf_moment_variance(3.0, beta=200.0)  # Moffat wings
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    sx, sy = 3.0, 1.5  # the galaxy's sigmas: q = 0.5
    image = np.exp(-0.5 * (xx**2 / (sx**2 + psf_sigma**2) + yy**2 / (sy**2 + psf_sigma**2)))
    stamp = _stamp(image * 20000.0 / image.sum())
    assert abs(photometric_reference(stamp, psf_variance=psf_sigma**2)[0, 2].item() - 0.5) < 0.01
    assert photometric_reference(stamp, psf_variance=0.0)[0, 2].item() > 0.6  # uncorrected: rounder


def test_magnitude_target_is_relative_to_the_images_noise():
    """Doubling the noise (and the flux with it) leaves the relative target unchanged up to
    2.5 log10 2: the emulator serves cutouts of other depths and zero points."""
    data = small_data()
    deeper = EmulatorData(**{**data.__dict__, "images": data.images * 2.0, "mag": data.mag - 2.5 * np.log10(2.0)})
    assert np.allclose(targets(deeper)[:, 0], targets(data)[:, 0], atol=1e-4, equal_nan=True)


def test_beta_nll_masks_and_weighs():
    mean = torch.zeros(2, 4)
    target = torch.ones(2, 4)
    mask = torch.tensor([[1.0] * 4, [0.0] * 4])
    wide, narrow = torch.full((2, 4), 1.0), torch.full((2, 4), -1.0)
    assert beta_nll(mean, narrow, target, mask, 0.0) > beta_nll(mean, wide, target, mask, 0.0)
    masked = beta_nll(mean, wide, target + torch.tensor([[0.0] * 4, [9.0] * 4]), mask, 0.5)
    assert torch.isclose(masked, beta_nll(mean, wide, target, mask, 0.5))


def test_kind_labels_leave_intermediates_out_of_bulge_and_disk():
    kind = np.array([KINDS.index(k) for k in ("bulge", "disk", "intermediate", "bulge_disk")])
    labels, mask = kind_labels(kind)
    assert labels.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 1], [1, 1, 1]]


def test_metrics():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert abs(nmad(np.random.default_rng(0).normal(0, 2.0, 20000)) - 2.0) < 0.05
    truth = {
        "mag": np.array([20.0, 21.0]),
        "r_e_arcsec": np.array([0.3, 0.3]),
        "sersic_n": np.array([1.0, 4.0]),
        "q": np.array([0.5, 0.5]),
    }
    guess = {**truth, "sersic_n": np.array([1.0, 2.5])}  # |dn| = 1.5: catastrophic
    m = structure_metrics(guess, truth, truth["mag"])
    assert m["overall"]["n"] == 2 and m["overall"]["catastrophic_fraction"] == 0.5
    assert m["by_magnitude"]["21-22"]["n"] == 1


def test_a_tiny_training_run_reports_held_out_metrics_and_a_loadable_model():
    data = small_data(n_train=64, n_test=24)
    cfg = EmulatorConfig(epochs=1, batch_size=16, channels=(4, 8), hidden=8, fitter_sample=2)
    result = train(cfg, data)
    m = result.metrics
    assert {"overall", "by_magnitude", "kind_auc", "uncertainty_calibration", "nmad_log_n", "fitter"} <= set(m)
    assert m["fitter"]["n"] == 2 and m["galaxies_per_second_per_core"] > 0
    assert len(result.evaluation["index"]) == 24 and len(result.evaluation["fitter_index"]) == 2
    # the version keeps the PSF its q reference was corrected for (F160W: a Moffat of 3 px FWHM)
    assert abs(result.checkpoint["reference_psf_variance_px2"] - psf_moment_variance(3.0)) < 1e-6
    assert 2.0 < result.checkpoint["reference_psf_variance_px2"] < 2.4
    out = predict(result.checkpoint, data.images[:5], data.zero_point_ab, device=torch.device("cpu"))
    assert all(np.isfinite(v).all() for v in out.values())
    assert ((out["p_bulge"] >= 0) & (out["p_bulge"] <= 1)).all() and (out["sersic_n"] > 0).all()
