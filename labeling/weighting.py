"""Classifier consistency weighting (Galaxy Zoo 2; Willett et al. 2013), in numpy (no Django).

For each vote and each question it answered, the classifier's consistency with the crowd is
the mean over that question's answers of f_a if they chose a, else 1 - f_a (f: the current
vote fractions). A classifier's consistency kappa is the mean over all their answered
questions; their weight is w = min(1, (kappa / 0.6)^8.5). Fractions are recomputed with the
weights, and the whole is iterated three times.
"""

from dataclasses import dataclass

import numpy as np

ITERATIONS = 3


@dataclass
class WeightingResult:
    weights: np.ndarray  # (n_classifiers,)
    consistency: np.ndarray  # (n_classifiers,)
    fractions: np.ndarray  # (n_galaxies, n_answers), NaN where a question was never reached


def weighted_fractions(
    *,
    chosen: np.ndarray,  # (n_votes, n_answers) bool: answers each vote chose
    classifier: np.ndarray,  # (n_votes,) int index
    galaxy: np.ndarray,  # (n_votes,) int index
    answer_question: np.ndarray,  # (n_answers,) int index of each answer's question
    tree: bool,
    n_classifiers: int,
    n_galaxies: int,
    iterations: int = ITERATIONS,
) -> WeightingResult:
    chosen = chosen.astype(float)
    n_questions = int(answer_question.max()) + 1
    # reached[v, q]: the vote answered question q (trees); every question for flat schemes.
    q_onehot = np.eye(n_questions)[answer_question]  # (n_answers, n_questions)
    reached = (chosen @ q_onehot > 0).astype(float) if tree else np.ones((chosen.shape[0], n_questions))
    weights = np.ones(n_classifiers)
    consistency = np.ones(n_classifiers)

    def fractions_with(w: np.ndarray) -> np.ndarray:
        wv = w[classifier][:, None]
        counts = np.zeros((n_galaxies, chosen.shape[1]))
        np.add.at(counts, galaxy, wv * chosen)
        denominators = np.zeros((n_galaxies, n_questions))
        np.add.at(denominators, galaxy, wv * reached)
        per_answer = denominators[:, answer_question]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(per_answer > 0, counts / per_answer, np.nan)

    fractions = fractions_with(weights)
    for _ in range(iterations):
        f = np.nan_to_num(fractions[galaxy])  # (n_votes, n_answers)
        agreement = chosen * f + (1 - chosen) * (1 - f)
        per_question = (agreement @ q_onehot) / q_onehot.sum(axis=0)  # mean over each question's answers
        answered = reached > 0
        total = np.zeros(n_classifiers)
        count = np.zeros(n_classifiers)
        np.add.at(total, classifier, np.where(answered, per_question, 0).sum(axis=1))
        np.add.at(count, classifier, answered.sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            consistency = np.where(count > 0, total / count, 0.0)
        weights = np.minimum(1.0, (consistency / 0.6) ** 8.5)
        fractions = fractions_with(weights)
    return WeightingResult(weights=weights, consistency=consistency, fractions=fractions)
