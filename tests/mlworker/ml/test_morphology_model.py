"""The morphology network on tiny tensors (no Django)."""

import numpy as np
import torch

from mlworker.ml.morphology import (
    MorphologyCNN,
    MorphologyConfig,
    MorphologyData,
    Question,
    augment,
    beta_binomial_nll,
    counts_nll,
    eight_views,
    fractions_from_logits,
    input_ranges,
    normalise,
    out_of_distribution,
    predict,
    train,
)


def test_shapes_and_loss():
    model = MorphologyCNN(n_answers=5, channels=(4, 8), hidden=8, image_size=32)
    logits, log_kappa = model(torch.randn(3, 1, 32, 32))
    assert logits.shape == (3, 5) and log_kappa.shape == (3, 5)
    counts = torch.tensor([[5.0, 0, 0, 0, 0], [1, 4, 0, 0, 0], [0, 0, 0, 0, 3]])
    n = torch.tensor([5.0, 5, 3])
    loss = beta_binomial_nll(logits, log_kappa, counts, n)
    loss.backward()
    assert torch.isfinite(loss) and model.head[-1].weight.grad is not None


def test_loss_weighs_galaxies_with_few_votes_less():
    logits = torch.zeros(1, 1)  # p = 0.5
    log_kappa = torch.full((1, 1), 2.0)
    few = beta_binomial_nll(logits, log_kappa, torch.tensor([[1.0]]), torch.tensor([1.0]))
    many = beta_binomial_nll(logits, log_kappa, torch.tensor([[20.0]]), torch.tensor([20.0]))
    assert many > few  # a confident wrong prediction costs more with 20 votes than with 1


def test_normalise_and_out_of_distribution():
    rng = np.random.default_rng(0)
    images = rng.normal(10.0, 2.0, (20, 16, 16)).astype(np.float32)
    images[:, 8, 8] += 100
    normed = normalise(images)
    assert abs(float(np.median(normed))) < 0.1
    ranges = input_ranges(images)
    assert not out_of_distribution(images, ranges).any()
    odd = images * 1000
    assert out_of_distribution(odd, ranges).all()


def test_training_learns_a_simple_rule():
    rng = np.random.default_rng(1)
    n = 200
    yy, xx = np.mgrid[:32, :32] - 16
    size = rng.uniform(1, 6, n)
    images = rng.normal(0, 1, (n, 32, 32)).astype(np.float32) + (
        30 * np.exp(-(xx**2 + yy**2)[None] / (2 * size[:, None, None] ** 2))
    ).astype(np.float32)
    p = (size - 1) / 5
    counts = np.stack([rng.binomial(8, p), rng.binomial(8, 1 - p)], axis=1)
    data = MorphologyData.single_question(
        images, counts, np.full(n, 8), np.arange(n), np.arange(n) % 5 == 0, ["size:big", "size:small"]
    )
    losses = []
    result = train(
        MorphologyConfig(image_size=32, channels=(8, 16), hidden=16, epochs=12, batch_size=32, lr=3e-3),
        data,
        lambda e: losses.append(e["loss"]) or True,
    )
    assert losses[-1] < losses[0]
    fractions, sigma = predict(result.checkpoint, images)
    assert np.corrcoef(fractions[:, 0], p)[0, 1] > 0.6
    assert fractions.shape == (n, 2) and sigma.shape == (n, 2) and np.all(sigma > 0)
    assert result.metrics["rmse"] < 0.3 and result.metrics["n_test"] == 40
    # the baselines were trained and evaluated on the same split
    assert set(result.metrics["baselines"]) == {"prior", "logistic"}
    assert result.evaluation["model"].shape == (40, 2) and len(result.evaluation["galaxy_ids"]) == 40
    tta, tta_sigma = predict(result.checkpoint, images[:8], tta=True)
    assert tta.shape == (8, 2) and np.all(tta_sigma >= 0) and np.abs(tta - fractions[:8]).max() < 0.3


def test_dirichlet_multinomial_for_single_choice_questions():
    """A single-choice question's fractions sum to one; its loss prefers the voted answer."""
    questions = [Question("main", "multiple", 0, 2), Question("interaction", "single", 2, 5)]
    logits = torch.tensor([[0.0, 0.0, 3.0, 0.0, 0.0]])
    p = fractions_from_logits(logits, questions)
    assert torch.isclose(p[0, 2:].sum(), torch.tensor(1.0))
    log_kappa = torch.full((1, 5), 2.0)
    counts_right = torch.tensor([[1.0, 2, 5, 0, 0]])
    counts_wrong = torch.tensor([[1.0, 2, 0, 5, 0]])
    trials = torch.tensor([[5.0, 5.0]])
    right = counts_nll(logits, log_kappa, counts_right, trials, questions)
    wrong = counts_nll(logits, log_kappa, counts_wrong, trials, questions)
    assert right < wrong
    # a question nobody reached adds nothing
    unreached = counts_nll(logits, log_kappa, torch.tensor([[1.0, 2, 0, 0, 0]]), torch.tensor([[5.0, 0.0]]), questions)
    only_main = counts_nll(
        logits[:, :2], log_kappa[:, :2], torch.tensor([[1.0, 2]]), torch.tensor([[5.0]]), questions[:1]
    )
    assert torch.isclose(unreached, only_main)


def test_views_and_shifts_move_pixels_without_resampling_them():
    """Rotations, flips and whole-pixel shifts: every augmented image holds exactly its
    original's pixel values (the noise the experts saw is kept, not smoothed)."""
    x = torch.from_numpy(normalise(np.random.default_rng(0).normal(0, 1, (16, 32, 32)).astype(np.float32)))[:, None]
    cfg = MorphologyConfig(max_shift_px=2, max_zoom=0.0, max_extra_noise=0.0)
    out = augment(x, torch.Generator().manual_seed(0), cfg)
    assert out.shape == x.shape
    for a, b in zip(out, x, strict=True):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)
    assert not torch.equal(out, x)


def test_optional_zoom_and_noise_keep_shape_and_flux_scale():
    cfg = MorphologyConfig(max_zoom=0.08, max_extra_noise=0.3)
    x = torch.from_numpy(normalise(np.random.default_rng(0).normal(0, 1, (6, 32, 32)).astype(np.float32)))[:, None]
    out = augment(x, torch.Generator().manual_seed(0), cfg)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert abs(float(out.std()) - float(x.std())) < 0.5 * float(x.std())
    views = eight_views(x)
    assert len(views) == 8 and all(v.shape == x.shape for v in views)
