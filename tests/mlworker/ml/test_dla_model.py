"""The DLA finder without Django: one-pass scan against the windowed network, continuum
normalisation, window labels, post-processing, catalog matching and a short training."""

import dataclasses

import numpy as np
import pytest
import torch

from mlworker.ml import dla
from mlworker.synthetic.spectra import Absorber, SpectraSimulator


@pytest.fixture(scope="module")
def sightlines():
    """Three mock sightlines with DLAs, their scan inputs and truth."""
    sim = SpectraSimulator()
    out = []
    for i, z in enumerate((2.3, 3.1, 4.2)):
        dlas = [Absorber(z_abs=z - 0.25, log_nhi=20.8, b_kms=30.0), Absorber(z_abs=z - 0.6, log_nhi=21.3, b_kms=25.0)]
        s = sim.simulate(i, 3, z_qso=z, absorbers=dlas)
        x, covered = dla.scan_input(sim.cfg.start_index, s.flux, s.ivar, s.z_qso)
        out.append((s, x, covered))
    return out


def _random_model(seed: int, context: bool = False) -> dla.DLANet:
    torch.manual_seed(seed)
    model = dla.DLANet(context=context).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.06)  # outputs that vary from window to window
    return model


@pytest.mark.parametrize(("seed", "context"), [(0, False), (1, False), (0, True)])
def test_one_pass_scan_equals_the_windowed_network(sightlines, seed, context):
    model = _random_model(seed, context)
    x = torch.from_numpy(np.stack([x for _, x, _ in sightlines]))
    z_qso = np.array([s.z_qso for s, _, _ in sightlines]) if context else None
    x[2, :700] = 0.0  # a sightline whose blue end lies outside the data
    with torch.inference_mode():
        windowed = dla.scan_windowed(model, x, z_qso)
        one_pass = dla.scan(model, x, z_qso, sightline_chunk=2)  # a full chunk and a partial one
        # the windowed network, one window at a time, for a few windows at the edges
        for k in (0, 1, 17, 200, dla.N_SCAN - 1):
            ctx = torch.from_numpy(dla.window_context(z_qso, np.full(3, k))) if context else None
            logit, offset, column = model(x[:, k : k + dla.WINDOW], ctx)
            assert torch.allclose(torch.sigmoid(logit), windowed[0][:, k], atol=1e-6)
    assert windowed[1].std() > 1.0 and windowed[0].std() > 1e-3  # outputs that vary
    prob, offset, column = (a - b for a, b in zip(windowed, one_pass, strict=True))
    assert prob.abs().max() < 1e-4
    assert (offset / dla.POSITIVE_PX).abs().max() < 1e-4
    assert column.abs().max() < 1e-4


def test_window_context_places_each_window(sightlines):
    """A window's place: the Ly-alpha redshift of its centre and its rest wavelength in the
    quasar's frame, the same whether asked for all windows or some."""
    z_qso = np.array([2.3, 4.2])
    ctx = dla.window_context(z_qso)
    assert ctx.shape == (2, dla.N_SCAN, dla.N_CONTEXT) and ctx.dtype == np.float32
    for j, z in enumerate(z_qso):
        wave = 10 ** ((dla.scan_start(z) + np.arange(dla.N_SCAN)) * dla.LOGLAM_STEP)
        np.testing.assert_allclose(np.expm1(ctx[j, :, 0] / 3.0 + np.log(4.0)), wave / dla.LYA - 1.0, rtol=1e-5)
        np.testing.assert_allclose(ctx[j, :, 1] * 223.0 + 1123.0, wave / (1.0 + z), rtol=1e-5)
    assert -1.0 <= ctx[..., 1].min() < -0.99 and 0.99 < ctx[..., 1].max() <= 1.0  # rest 900-1346 A
    assert ctx[1, 0, 0] > ctx[0, -1, 0]  # every window of the z = 4.2 quasar is at higher redshift
    np.testing.assert_array_equal(dla.window_context(z_qso, np.array([5, 1700])), ctx[[0, 1], [5, 1700]])
    np.testing.assert_array_equal(dla.window_context(4.2), ctx[1])
    model = _random_model(0, context=True)
    x = torch.from_numpy(np.stack([x for _, x, _ in sightlines]))
    with pytest.raises(ValueError, match="z_qso"):
        dla.scan(model, x)
    with pytest.raises(ValueError, match="one redshift per sightline"):
        dla.scan(model, x, [3.0])
    with pytest.raises(ValueError, match="ctx of shape"):
        model(x[:, : dla.WINDOW])


def test_the_pass_alone_is_not_the_windowed_function(sightlines):
    """Reading every conv2 cell of a window from the uncorrected pass (as if the window had no
    padding of its own) gives other outputs: the correction is what makes the scan exact."""
    import torch.nn.functional as F

    model = _random_model(0)
    x = torch.from_numpy(np.stack([sightlines[0][1]]))
    m = 128
    with torch.inference_mode():
        a1 = F.relu(F.conv1d(F.pad(x, (m, m))[:, None], model.conv1.weight, model.conv1.bias))
        p1 = F.max_pool1d(a1, 7, stride=1, dilation=3)
        a2 = F.relu(F.conv1d(p1, model.conv2.weight, model.conv2.bias, dilation=12))[0]
        cells = torch.arange(dla.N_SCAN)[:, None] + m - 105 + 12 * torch.arange(34)[None, :]
        naive = model.head(a2[:, cells].permute(1, 0, 2))[2]
        windowed = dla.scan_windowed(model, x)[2][0]
    assert (naive - windowed).abs().max() > 1e-3


def test_scan_input_is_independent_of_flux_units(sightlines):
    sim = SpectraSimulator()
    s, x, covered = sightlines[1]
    x_scaled, _ = dla.scan_input(sim.cfg.start_index, s.flux * 1e3, s.ivar / 1e6, s.z_qso)
    np.testing.assert_allclose(x_scaled, x, rtol=1e-5, atol=1e-6)
    normalised = s.flux / s.continuum
    x_norm, _ = dla.scan_input(sim.cfg.start_index, normalised, s.ivar * s.continuum**2, s.z_qso)
    inside = x != 0
    assert np.median(np.abs(x_norm[inside] - x[inside])) < 0.1  # the continuum estimate is close to the truth
    assert covered.sum() > 1000 and x.shape == (dla.PADDED,)


def test_continuum_of_a_power_law_is_recovered():
    start = 35563
    n = 4607
    rest = 10 ** ((start + np.arange(n)) * 1e-4) / 3.5
    flux = 7.0 * (rest / 1450.0) ** -1.3
    cont = dla.continuum_estimate(start, flux, np.ones(n), 2.5)
    np.testing.assert_allclose(cont, flux, rtol=1e-3)


def test_window_labels_follow_the_absorbers():
    z_qso = 3.0
    first = dla.scan_start(z_qso)
    covered = np.ones(dla.N_SCAN, dtype=bool)
    z_strong = float(dla.z_of_pixel(first + 900))
    z_weak = float(dla.z_of_pixel(first + 300))
    labels = dla.window_labels(z_qso, covered, np.array([z_strong, z_weak]), np.array([20.6, 19.4]))
    label, offset = labels["label"], labels["offset"]
    assert (label[840:961] == 1).all() and label[839] == -1 and label[961] == -1  # +-60 positive, 60-80 ignored
    assert label[819] == 0 and label[981] == 0
    assert offset[850] == pytest.approx(50.0, abs=1e-3) and labels["log_nhi"][900] == pytest.approx(20.6)
    assert (label[220:381] == -1).all()  # a weak system is neither positive nor negative
    beta = int(round(dla.pixel_of(z_strong, dla.LYB) - first))
    if 0 <= beta < dla.N_SCAN:
        assert label[beta] == -1
    uncovered = dla.window_labels(z_qso, np.zeros(dla.N_SCAN, dtype=bool), np.array([z_strong]), np.array([21.0]))
    assert (uncovered["label"] == -1).all()


def test_post_processing_finds_peaks_flags_lyman_beta_and_estimates_nhi():
    z_qso = 3.4
    n = dla.N_SCAN
    prob, offset, column = np.zeros(n), np.zeros(n), np.zeros(n)
    first = dla.scan_start(z_qso)
    strong = 1150  # rest ~1175 A: on the search path, 10,000 km/s short of the quasar
    z_strong = float(dla.z_of_pixel(first + strong))
    beta = int(round(dla.pixel_of(z_strong, dla.LYB) - first))
    for centre, n_hi in ((strong, 21.0), (beta, 20.2), (300, 20.5)):
        k = np.arange(centre - 60, centre + 61)
        prob[k] = 0.95
        offset[k] = centre - k + np.random.default_rng(0).normal(0, 1.0, k.size)
        column[k] = n_hi
    found = dla.absorbers_from_scan(z_qso, prob, offset, column, np.ones(n, dtype=bool), column_sigma=0.1)
    assert len(found) == 3
    by_pixel = {round(a.pixel - first): a for a in found}
    main = min(found, key=lambda a: abs(a.pixel - first - strong))
    assert main.z_abs == pytest.approx(z_strong, abs=3e-4)
    assert main.log_nhi == pytest.approx(21.0, abs=1e-6) and main.kind == "dla" and main.confidence > 0.8
    assert main.log_nhi_err == pytest.approx(0.1, abs=1e-3)
    flagged = [a for a in found if a.lyman_beta]
    assert len(flagged) == 1 and abs(flagged[0].pixel - first - beta) < 3 and flagged[0].kind == "subdla"
    assert len(by_pixel) == 3
    quiet = dla.absorbers_from_scan(z_qso, np.full(n, 0.1), offset, column, np.ones(n, dtype=bool))
    assert quiet == []


def test_catalog_metrics_count_matches_and_false_dlas():
    truth = [("a", 2.50, 20.5), ("a", 2.80, 21.0), ("b", 3.00, 20.35), ("c", 2.2, 20.1)]
    predicted = [
        ("a", 2.501, 20.6, False),  # as DLA
        ("a", 2.810, 20.1, False),  # as absorber only
        ("b", 3.030, 20.5, False),  # |dz| > 0.015: a false DLA, truth missed
        ("c", 2.205, 20.4, False),  # matches a true absorber with log N >= 20.0: not false
        ("c", 2.205 - 0.3, 20.9, True),  # Lyman-beta flagged: neither matched nor counted
    ]
    m = dla.catalog_metrics(predicted, truth)
    assert m["n_true_dla"] == 3 and m["n_predicted_dla"] == 3
    assert m["completeness_absorber"] == pytest.approx(2 / 3)
    assert m["completeness_dla"] == pytest.approx(1 / 3)
    assert m["false_dla_fraction"] == pytest.approx(1 / 3)
    assert m["sigma_z"] == pytest.approx(np.std([0.001, 0.010]))


def test_catalog_metrics_by_log_nhi_bin_true_and_predicted_columns():
    truth = [("a", 2.50, 20.35), ("a", 2.80, 21.5), ("b", 3.00, 20.40), ("c", 2.2, 19.6), ("d", 2.6, 20.7)]
    predicted = [
        ("a", 2.501, 20.25, False),  # a true 20.35 found as absorber, not as DLA
        ("a", 2.802, 21.3, False),  # a true 21.5 found as DLA (predicted in the >= 21.2 bin)
        ("b", 3.001, 20.5, False),  # a true 20.40 found as DLA, predicted in 20.45-20.6
        ("c", 2.201, 20.32, False),  # a sub-DLA called a DLA: false, predicted in 20.3-20.45
        ("e", 2.4, 20.9, False),  # nothing there: false, in 20.8-21.2
    ]  # the true 20.7 on "d" is missed
    m = dla.catalog_metrics_by_log_nhi(predicted, truth)
    assert list(m) == ["log N 20.3-20.45", "log N 20.45-20.6", "log N 20.6-20.8", "log N 20.8-21.2", "log N >=21.2"]
    near = m["log N 20.3-20.45"]
    assert near["n_true_dla"] == 2 and near["completeness_absorber"] == 1.0 and near["completeness_dla"] == 0.5
    assert near["n_predicted_dla"] == 1 and near["false_dla_fraction"] == 1.0
    assert m["log N 20.45-20.6"]["n_true_dla"] == 0 and m["log N 20.45-20.6"]["completeness_dla"] is None
    assert m["log N 20.45-20.6"]["n_predicted_dla"] == 1 and m["log N 20.45-20.6"]["false_dla_fraction"] == 0.0
    assert m["log N 20.6-20.8"]["completeness_absorber"] == 0.0 and m["log N 20.6-20.8"]["n_predicted_dla"] == 0
    assert m["log N 20.8-21.2"]["false_dla_fraction"] == 1.0
    assert m["log N >=21.2"]["completeness_dla"] == 1.0 and m["log N >=21.2"]["false_dla_fraction"] == 0.0
    overall = dla.catalog_metrics(predicted, truth)
    assert sum(b["n_predicted_dla"] for b in m.values()) == overall["n_predicted_dla"] == 4


def test_short_training_runs_and_its_checkpoint_scans_the_same():
    from mlworker.synthetic.spectra import dla_mock_data

    data = dla_mock_data(60, 4, dla_boost=8.0, test_fraction=0.25, validation_fraction=0.1)
    cfg = dla.DLAConfig(epochs=1, windows_per_epoch=1024, batch_size=128)
    seen = []
    result = dla.train(cfg, data, lambda e: seen.append(e) or True)
    assert seen and seen[-1]["epoch"] == 1
    m = result.metrics
    assert m["n_test_sightlines"] == 15 and m["n_true_dla"] > 0
    assert 0.0 <= m["dla_score"] <= 1.0 and "snr 0-6" in m["by_snr"]
    assert set(result.evaluation) >= {"truth_z", "pred_z", "snr", "sightline_ids"}
    model = dla.load_model(result.checkpoint, torch.device("cpu"))
    assert model.context and result.checkpoint["model_args"]["context"]  # the default reads window places
    rows = np.flatnonzero(data.is_test)[:2]
    with torch.inference_mode():
        a = dla.scan(model, torch.from_numpy(data.x[rows]), data.z_qso[rows])
    again = dla.scan_data(model, data, rows, torch.device("cpu"))
    assert len(again) == 2 and a[0].shape == (2, dla.N_SCAN)
    np.testing.assert_allclose(np.stack([p for p, _, _ in again]), a[0].numpy(), atol=1e-5)
    with pytest.raises(InterruptedError):
        dla.train(cfg, data, lambda e: False)


def test_epochs_fit_the_time_left():
    """With a deadline, as many epochs as fit at the measured step time, leaving room for the
    scans; never more than asked for, never none."""
    import time

    cfg = dla.DLAConfig(epochs=50)
    now = time.monotonic()
    assert dla._epochs_within(cfg, None, 10.0, 1e6, 400) == 50
    # 1,000 s left, 100 s of scanning (150 s reserved, and 30): 820 s at 0.2 s x 100 steps x 1.05
    assert dla._epochs_within(cfg, now + 1000.0, 0.2, 100.0, 100) == 39
    assert dla._epochs_within(cfg, now + 1e6, 0.2, 100.0, 100) == 50
    assert dla._epochs_within(cfg, now - 5.0, 0.2, 100.0, 100) == 1


def test_a_deadline_shortens_training_and_is_recorded():
    import time

    from mlworker.synthetic.spectra import dla_mock_data

    data = dla_mock_data(24, 4, dla_boost=8.0, test_fraction=0.25, validation_fraction=0.1)
    cfg = dla.DLAConfig(epochs=3, windows_per_epoch=512, batch_size=64)
    tight = dla.train(cfg, data, deadline=time.monotonic() + 1.0)
    assert tight.metrics["epochs_run"] == 1 and tight.metrics["epochs_limited_by_time"]
    assert tight.metrics["probe_step_seconds"] > 0 and tight.metrics["probe_scan_seconds"] > 0
    assert len(tight.history) == 1 and tight.checkpoint["step"] == 8
    free = dla.train(dataclasses.replace(cfg, time_limit_s=0.0), data)
    assert free.metrics["epochs_run"] == 3 and not free.metrics["epochs_limited_by_time"]
    assert "probe_step_seconds" not in free.metrics and len(free.history) == 3


def test_hard_negatives_are_mined_from_the_models_own_false_alarms():
    from mlworker.synthetic.spectra import dla_mock_data

    data = dla_mock_data(40, 5, dla_boost=8.0, test_fraction=0.25, validation_fraction=0.1)
    train_rows = np.flatnonzero(~data.is_test & ~data.is_validation)
    label = dla._labels(data, train_rows)[0]
    model = _random_model(0)
    with torch.no_grad():
        model.classify.bias.fill_(5.0)  # calls every window positive: every negative is a false alarm
    hard = dla._hard_negatives(model, data, train_rows[:4], label, torch.device("cpu"), 0.3)
    assert len(hard) == int((label[train_rows[:4]] == 0).sum()) > 0
    assert set(hard[:, 0]) <= set(train_rows[:4]) and (label[hard[:, 0], hard[:, 1]] == 0).all()
    assert model.training  # mining hands the model back to training
    cfg = dla.DLAConfig(
        epochs=3,
        windows_per_epoch=512,
        batch_size=128,
        hard_negative_fraction=0.3,
        hard_negative_start=0.0,
        hard_negative_every=1,
        hard_negative_sightlines=6,
    )
    mined = dla.train(cfg, data).metrics["hard_negatives_mined"]
    assert [m["epoch"] for m in mined] == [1, 2]  # not after the last epoch
    assert all(isinstance(m["windows"], int) and m["windows"] >= 0 for m in mined)


def test_forest_weighted_negatives_favour_dense_forest_and_train():
    from mlworker.synthetic.spectra import dla_mock_data, tau_eff

    data = dla_mock_data(30, 7, dla_boost=8.0, test_fraction=0.25, validation_fraction=0.1)
    train_rows = np.flatnonzero(~data.is_test & ~data.is_validation)
    label = dla._labels(data, train_rows)[0]
    neg = np.argwhere(label == 0)
    assert dla._negative_cdf(data, neg, 0.0) is None  # the default draws uniformly
    cdf = dla._negative_cdf(data, neg, 1.0)
    weight = np.diff(np.r_[0.0, cdf])
    assert np.all(weight > 0) and np.isclose(cdf[-1], 1.0)

    # a window's weight is the forest opacity at its Ly-alpha redshift, capped at the quasar's
    def z_window(row, k):
        return min(float(dla.z_of_pixel(dla.scan_start(float(data.z_qso[row])) + k)), float(data.z_qso[row]))

    first, last = 0, len(neg) - 1
    ratio = tau_eff(z_window(*neg[first])) / tau_eff(z_window(*neg[last]))
    assert weight[first] / weight[last] == pytest.approx(ratio, rel=1e-6)
    high, low = data.z_qso[neg[:, 0]] > 3.8, data.z_qso[neg[:, 0]] < 2.8
    assert high.any() and low.any()
    assert weight[high].mean() > 2 * weight[low].mean()
    cfg = dla.DLAConfig(epochs=1, windows_per_epoch=512, batch_size=128, negative_forest_power=1.0)
    assert np.isfinite(dla.train(cfg, data).metrics["final_train_loss"])


def test_post_processing_keeps_to_the_search_path_and_merges_close_peaks():
    z_qso = 3.0
    n = dla.N_SCAN
    first = dla.scan_start(z_qso)
    prob, offset, column = np.zeros(n), np.zeros(n), np.full(n, 20.6)
    proximate = int(round(dla.pixel_of(z_qso - 0.005) - first))  # ~370 km/s short of the quasar
    for centre in (proximate, 600, 640):  # 600 and 640: one absorber's votes split in two
        k = np.arange(centre - 60, centre + 61)
        prob[k] = 0.9
        offset[k] = centre - k
    found = dla.absorbers_from_scan(z_qso, prob, offset, column, np.ones(n, dtype=bool), column_shift=0.1)
    assert len(found) == 1 and 590 < found[0].pixel - first < 650
    assert found[0].log_nhi == pytest.approx(20.7)


def test_lyman_limit_flux_is_black_below_a_dla_and_not_below_the_open_forest():
    sim = SpectraSimulator()
    z_qso, z_dla = 4.0, 3.85
    clean = {"forest": False, "lyman_limit_systems": False, "igm_continuum": False, "masks": False}
    open_sim = SpectraSimulator(type(sim.cfg)(**clean))
    with_dla = open_sim.simulate(0, 5, z_qso=z_qso, absorbers=[Absorber(z_dla, 20.5, 30.0)])
    without = open_sim.simulate(0, 5, z_qso=z_qso, absorbers=[])
    first = dla.scan_start(z_qso)
    k = int(round(dla.pixel_of(z_dla) - first))
    below = dla.lyman_limit_flux(sim.cfg.start_index, with_dla.flux, with_dla.ivar, z_qso)
    assert below.shape == (2, dla.N_SCAN) and below.dtype == np.float32
    assert abs(below[0, k]) < 3 * below[1, k] + 0.01  # opaque: zero within the noise
    free = dla.lyman_limit_flux(sim.cfg.start_index, without.flux, without.ivar, z_qso)
    assert free[0, k] == pytest.approx(1.0, abs=0.25) and free[0, k] > 10 * free[1, k]
    # A candidate whose 860-905 A falls blue-ward of the spectrum has no figure.
    assert np.isnan(free[0, 0]) and np.isnan(free[1, 0])


def test_lyman_limit_veto_drops_a_peak_with_flux_below_its_limit_and_keeps_an_opaque_one():
    z_qso, n = 4.0, dla.N_SCAN
    prob, offset, column = np.zeros(n), np.zeros(n), np.full(n, 20.6)
    for centre in (600, 1000):  # rest ~1030 and ~1130 A
        k = np.arange(centre - 60, centre + 61)
        prob[k], offset[k] = 0.95, centre - k
    limit = np.zeros((2, n), np.float32)
    limit[1] = 0.02
    limit[0, 950:1050] = 0.4  # transmitted flux below the second candidate's Lyman limit
    covered = np.ones(n, dtype=bool)
    kept = dla.absorbers_from_scan(z_qso, prob, offset, column, covered, lyman_limit=limit)
    assert [round(a.pixel - dla.scan_start(z_qso)) for a in kept] == [600]
    assert kept[0].log_nhi_err == pytest.approx(0.0, abs=1e-6)  # the column's own figures, untouched
    # Noisy flux (0.4 +- 0.1) is not significant at 5 sigma; no figure (NaN) vetoes nothing; nor does veto=None.
    noisy = limit.copy()
    noisy[1, 950:1050] = 0.1
    unknown = limit.copy()
    unknown[:, 950:1050] = np.nan
    for lim, veto in ((noisy, (0.1, 5.0)), (unknown, (0.1, 5.0)), (limit, None)):
        found = dla.absorbers_from_scan(z_qso, prob, offset, column, covered, 0.2, 0.1, 0.0, lim, veto)
        assert len(found) == 2 and all(a.log_nhi_err == pytest.approx(0.1, abs=1e-6) for a in found)
    assert dla.veto_of({}) == (0.1, 5.0) and dla.veto_of({"lyman_limit_veto": False}) is None


def test_dla_data_saves_with_and_without_lyman_limit_figures(tmp_path):
    from mlworker.synthetic.spectra import dla_mock_data

    data = dla_mock_data(4, seed=3)
    assert data.lyman_limit.shape == (4, 2, dla.N_SCAN) and data.lyman_limit.dtype == np.float16
    data.save(tmp_path / "with.npz")
    np.testing.assert_array_equal(dla.DLAData.load(tmp_path / "with.npz").lyman_limit, data.lyman_limit)
    data.lyman_limit = None
    data.save(tmp_path / "without.npz")
    assert dla.DLAData.load(tmp_path / "without.npz").lyman_limit is None
