"""The simulated crowd: votes follow the image, and the expected fractions are the crowd's."""

import numpy as np
import pytest
from astropy.table import Table

from labeling.crowd import MAIN, Crowd, GalaxyFeatures, features_from_truth


def _features(n, cls, snr, size, q=0.6, bt=np.nan):
    return GalaxyFeatures(
        np.full(n, cls), np.full(n, snr, float), np.full(n, size, float), np.full(n, q, float), np.full(n, bt, float)
    )


def test_expected_fractions_match_the_simulated_votes():
    crowd = Crowd(30, seed=2)
    features = _features(1, "bulge_disk", 40.0, 0.5, bt=0.5)
    appearance = features.appearance()
    rng = np.random.default_rng(0)
    tallies = np.zeros(len(MAIN))
    n = 6000
    for k in range(n):
        chosen = {
            key.split(":")[1]
            for key in crowd.candels_vote(features, appearance, 0, k % crowd.n, rng)
            if key.startswith("main_class")
        }
        tallies += [c in chosen for c in MAIN]
    np.testing.assert_allclose(tallies / n, crowd.expected_main_fractions(features)[0], atol=0.02)


def test_votes_depend_on_what_the_image_shows_not_only_the_class():
    crowd = Crowd(40, seed=3)
    bright_big = crowd.expected_main_fractions(_features(1, "disk", 60.0, 0.6))[0]
    faint = crowd.expected_main_fractions(_features(1, "disk", 3.0, 0.6))[0]
    tiny = crowd.expected_main_fractions(_features(1, "disk", 60.0, 0.08))[0]
    assert bright_big[MAIN.index("disk")] > 0.7
    assert faint[MAIN.index("unclassifiable")] > bright_big[MAIN.index("unclassifiable")] + 0.3
    assert tiny[MAIN.index("compact")] > 0.5
    bulge_heavy = crowd.expected_main_fractions(_features(1, "bulge_disk", 60.0, 0.5, bt=0.8))[0]
    disk_heavy = crowd.expected_main_fractions(_features(1, "bulge_disk", 60.0, 0.5, bt=0.2))[0]
    assert bulge_heavy[0] > disk_heavy[0] and disk_heavy[1] > bulge_heavy[1]


def test_classifiers_differ_and_the_crowd_is_reproducible():
    a, b = Crowd(20, seed=5), Crowd(20, seed=5)
    np.testing.assert_array_equal(a.bias, b.bias)
    features = _features(1, "spheroid", 20.0, 0.3)
    p = [a.main_class_probabilities(features.appearance(), i)[0][0] for i in range(a.n)]
    assert np.std([x[0] for x in p]) > 0.02


def test_gz2_paths_follow_the_tree(mock_galaxies):
    truth = Table.read(mock_galaxies / "truth.csv")
    features = features_from_truth(truth)
    crowd = Crowd(10, seed=1)
    appearance = features.appearance()
    rng = np.random.default_rng(1)
    for g in range(len(truth)):
        path = crowd.gz2_vote(features, appearance, g, g % 10, rng)
        questions = [p.split(":")[0] for p in path]
        assert questions[0] == "t01" and len(set(questions)) == len(questions)
        assert questions[-1] in ("t01", "t06", "t08")


@pytest.mark.parametrize("cls", ["spheroid", "disk", "irregular", "merger", "compact", "unclassifiable"])
def test_every_class_votes(cls):
    crowd = Crowd(5, seed=1)
    features = _features(1, cls, 30.0, 0.4, q=0.2)
    keys = crowd.candels_vote(features, features.appearance(), 0, 0, np.random.default_rng(4))
    assert any(k.startswith("main_class:") for k in keys) and any(k.startswith("clumpiness_patchiness:") for k in keys)
