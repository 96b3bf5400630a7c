"""The phenomena model's pieces: the redshift-only baseline, per-snapshot metrics, a tiny run."""

import numpy as np
import torch

from mlworker.ml.phenomena import (
    PHASES,
    PhenomenaConfig,
    PhenomenaData,
    RedshiftBaseline,
    classification_metrics,
    predict,
    train,
)


def test_redshift_baseline_returns_the_local_label_frequencies():
    z = np.array([1.0] * 10 + [3.0] * 10)
    phase = np.array([2] * 8 + [1] * 2 + [0] * 10)
    merger = np.array([1] * 5 + [0] * 15)
    baseline = RedshiftBaseline(z, phase, merger, bandwidth=0.1)
    p_phase, p_merger = baseline.predict(np.array([1.0, 3.0]))
    assert np.allclose(p_phase[0], [0.0, 0.2, 0.8], atol=1e-6) and np.allclose(p_phase[1], [1.0, 0.0, 0.0], atol=1e-6)
    assert np.allclose(p_merger, [0.5, 0.0], atol=1e-6)
    assert np.allclose(p_phase.sum(axis=1), 1.0)


def test_per_snapshot_metrics_average_the_cameras():
    snapshot = np.array([1, 1, 2, 2])
    phase = np.array([0, 0, 2, 2])
    merger = np.array([0, 0, 1, 1])
    # one camera of each snapshot is wrong, but the average over cameras is right
    p_phase = np.array([[0.9, 0.05, 0.05], [0.3, 0.4, 0.3], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    p_merger = np.array([0.1, 0.6, 0.9, 0.4])
    m = classification_metrics(p_phase, p_merger, phase, merger, snapshot)
    assert m["per_image"]["phase_accuracy"] == 0.5 and m["per_snapshot"]["phase_accuracy"] == 1.0
    assert m["per_snapshot"]["n"] == 2 and m["per_snapshot"]["merger_accuracy"] == 1.0


def test_a_tiny_training_run():
    rng = np.random.default_rng(0)
    n = 96
    images = rng.normal(0, 1, (n, 64, 64)).astype(np.float32)
    phase = rng.integers(0, 3, n)
    images[phase == 1, 28:36, 28:36] += 20  # a compact core shows the blue nugget
    data = PhenomenaData(
        images=images,
        phase=phase,
        merger=rng.random(n) < 0.2,
        redshift=rng.uniform(1, 4, n),
        run=np.repeat(np.arange(4), n // 4),
        snapshot=np.arange(n) // 2,
        camera=np.arange(n) % 2,
        image_ids=np.arange(n),
        is_test=np.repeat(np.arange(4), n // 4) == 3,
        run_names=["A", "B", "C", "D"],
    )
    result = train(PhenomenaConfig(epochs=2, batch_size=16, channels=(4, 8), hidden=8), data)
    m = result.metrics
    assert m["n_train_runs"] == 3 and m["n_test_runs"] == 1 and m["test_runs"] == ["D"]
    assert {"per_image", "per_snapshot"} <= set(m["model"]) and {"per_image"} <= set(m["redshift_baseline"])
    assert 0 <= m["score"] <= 1
    p_phase, p_merger = predict(result.checkpoint, images[:4], device=torch.device("cpu"))
    assert p_phase.shape == (4, len(PHASES)) and np.allclose(p_phase.sum(axis=1), 1, atol=1e-5)
    assert ((p_merger >= 0) & (p_merger <= 1)).all()
