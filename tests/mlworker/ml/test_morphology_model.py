"""The morphology network on tiny tensors (no Django)."""

import numpy as np
import torch

from mlworker.ml.morphology import (
    MorphologyCNN,
    MorphologyConfig,
    MorphologyData,
    beta_binomial_nll,
    input_ranges,
    normalise,
    out_of_distribution,
    predict,
    train,
)


def test_shapes_and_loss():
    model = MorphologyCNN(n_answers=5, channels=(4, 8), hidden=8)
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
    data = MorphologyData(images, counts, np.full(n, 8), np.arange(n), np.arange(n) % 5 == 0, ["big", "small"])
    losses = []
    result = train(
        MorphologyConfig(image_size=32, channels=(8, 16), hidden=16, epochs=12, batch_size=32, lr=3e-3),
        data,
        lambda e: losses.append(e["loss"]) or True,
    )
    assert losses[-1] < losses[0]
    fractions, uncertainty = predict(result.checkpoint, images)
    assert np.corrcoef(fractions[:, 0], p)[0, 1] > 0.6
    assert fractions.shape == (n, 2) and np.all(uncertainty > 0)
    assert result.metrics["rmse"] < 0.3 and result.metrics["n_test"] == 40
