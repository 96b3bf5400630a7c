"""Galaxy Zoo 2 consistency weighting: a random clicker is down-weighted, careful classifiers are not."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from labeling.models import ClassifierWeight, WeightedFraction
from labeling.services import ImportedVote, votes_import
from labeling.weighting import weighted_fractions

pytestmark = pytest.mark.django_db


def test_weighting_down_weights_a_random_clicker():
    rng = np.random.default_rng(0)
    n_galaxies, n_good = 200, 8
    truth = rng.integers(0, 2, n_galaxies)  # yes/no questions: where the GZ2 weighting bites
    chosen, classifier, galaxy = [], [], []
    for g in range(n_galaxies):
        for c in range(n_good + 1):
            answer = truth[g] if c < n_good and rng.random() < 0.9 else rng.integers(0, 2)
            row = np.zeros(2, bool)
            row[answer] = True
            chosen.append(row)
            classifier.append(c)
            galaxy.append(g)
    result = weighted_fractions(
        chosen=np.array(chosen),
        classifier=np.array(classifier),
        galaxy=np.array(galaxy),
        answer_question=np.zeros(2, int),
        tree=True,
        n_classifiers=n_good + 1,
        n_galaxies=n_galaxies,
    )
    assert np.all(result.weights[:n_good] == 1.0)
    assert result.weights[n_good] < 0.5 and result.consistency[n_good] < result.consistency[:n_good].min()
    raw = np.zeros((n_galaxies, 2))
    np.add.at(raw, np.array(galaxy), np.array(chosen, float))
    raw /= raw.sum(axis=1, keepdims=True)
    correct = result.fractions[np.arange(n_galaxies), truth].mean()
    assert correct > raw[np.arange(n_galaxies), truth].mean()  # weighting moves fractions towards the truth


def test_weight_classifiers_command_stores_weights(gz2, mock_galaxies, galaxies):
    call_command(
        "simulate_votes",
        project="g-gz2",
        truth=str(mock_galaxies / "truth.csv"),
        classifiers=8,
        per_galaxy=6,
        verbosity=0,
    )
    clicker = get_user_model().objects.create_user(username="clicker")
    rng = np.random.default_rng(1)
    paths = [["t01:star"], ["t01:smooth", "t07:cigar", "t06:yes", "t08:ring"]]
    votes_import(project=gz2, votes=[ImportedVote(clicker.pk, g.pk, paths[rng.integers(0, 2)]) for g in galaxies])
    call_command("weight_classifiers", scheme="gz2", verbosity=0)
    consistency = dict(ClassifierWeight.objects.values_list("classifier__username", "consistency"))
    assert len(consistency) == 9 and consistency["clicker"] < min(k for u, k in consistency.items() if u != "clicker")
    for weight in ClassifierWeight.objects.all():
        assert weight.weight == pytest.approx(min(1.0, (weight.consistency / 0.6) ** 8.5))
    assert WeightedFraction.objects.filter(answer__key="smooth").count() > 0
