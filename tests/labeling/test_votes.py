"""Casting, validating, undoing votes; counts and fractions kept equal to the votes; retirement."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from catalog.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling.models import AnswerCount, GalaxyVoteTotal, ProjectSubject, Vote
from labeling.services import (
    fractions_recompute,
    gold_label_set,
    subject_skip,
    subjects_retire,
    version_spec,
    vote_cast,
    vote_undo,
)
from tests.labeling.conftest import CANDELS_DISK_MERGER, CANDELS_SPHEROID, GZ2_SMOOTH_ROUND, GZ2_SPIRAL

pytestmark = pytest.mark.django_db


def fractions(galaxy, project):
    return {
        f"{r.answer.question.key}:{r.answer.key}": (r.count, round(r.fraction, 6))
        for r in AnswerCount.objects.filter(galaxy=galaxy, scheme_version=project.scheme_version).select_related(
            "answer__question"
        )
    }


def test_candels_fractions_are_over_classifiers_who_voted(candels, users, galaxies):
    g = galaxies[0]
    vote_cast(project=candels, classifier=users[0], galaxy_id=g.pk, answers=CANDELS_SPHEROID, seconds_spent=4.2)
    vote_cast(project=candels, classifier=users[1], galaxy_id=g.pk, answers=CANDELS_DISK_MERGER)
    vote_cast(project=candels, classifier=users[2], galaxy_id=g.pk, answers=["main_class:spheroid", "main_class:disk"])
    f = fractions(g, candels)
    assert f["main_class:spheroid"] == (2, round(2 / 3, 6))
    assert f["main_class:disk"] == (2, round(2 / 3, 6))  # multi-select: fractions can sum to more than 1
    assert f["main_class:irregular"] == (1, round(1 / 3, 6))
    assert f["interaction:none"] == (2, round(2 / 3, 6))  # the default answer is filled in
    assert GalaxyVoteTotal.objects.get(galaxy=g).n_votes == 3
    assert ProjectSubject.objects.get(project=candels, galaxy=g).n_votes == 3


def test_gz2_fractions_are_per_question(gz2, users, galaxies):
    g = galaxies[0]
    vote_cast(project=gz2, classifier=users[0], galaxy_id=g.pk, answers=GZ2_SMOOTH_ROUND)
    vote_cast(project=gz2, classifier=users[1], galaxy_id=g.pk, answers=GZ2_SPIRAL)
    vote_cast(project=gz2, classifier=users[2], galaxy_id=g.pk, answers=GZ2_SPIRAL)
    f = fractions(g, gz2)
    assert f["t01:smooth"] == (1, round(1 / 3, 6)) and f["t01:features"] == (2, round(2 / 3, 6))
    assert f["t04:spiral"] == (2, 1.0)  # 2 of the 2 votes that reached t04
    assert f["t07:completely_round"] == (1, 1.0)
    assert f["t06:no"] == (3, 1.0)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["main_class:spheroid", "interaction:none", "interaction:merger"], "question 'interaction' takes one answer"),
        (["interaction:none"], "question 'main_class' needs an answer"),
        (["main_class:elliptical"], "'main_class:elliptical' is not an answer of candels"),
        (["main_class:spheroid", "main_class:spheroid"], "an answer is given twice"),
        ([999999], "do not belong to scheme candels"),
    ],
)
def test_invalid_candels_votes_change_nothing(candels, users, galaxies, answers, message):
    with pytest.raises(ApplicationError, match=message):
        vote_cast(project=candels, classifier=users[0], galaxy_id=galaxies[0].pk, answers=answers)
    assert not Vote.objects.exists() and not AnswerCount.objects.exists()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["t01:smooth", "t07:in_between"], "question 't06' is on the path and needs exactly one answer"),
        (["t01:smooth", "t07:cigar", "t06:no", "t02:yes"], "answers to questions off the path taken: t02"),
        (["t01:star", "t02:no"], "off the path taken: t02"),
    ],
)
def test_invalid_tree_paths(gz2, users, galaxies, answers, message):
    with pytest.raises(ApplicationError, match=message):
        vote_cast(project=gz2, classifier=users[0], galaxy_id=galaxies[0].pk, answers=answers)
    vote_cast(project=gz2, classifier=users[0], galaxy_id=galaxies[0].pk, answers=["t01:star"])


def test_duplicate_vote_is_refused_and_changes_nothing(candels, users, galaxies):
    vote_cast(project=candels, classifier=users[0], galaxy_id=galaxies[0].pk, answers=CANDELS_SPHEROID)
    before = fractions(galaxies[0], candels)
    with pytest.raises(Conflict, match="already voted"):
        vote_cast(project=candels, classifier=users[0], galaxy_id=galaxies[0].pk, answers=CANDELS_DISK_MERGER)
    assert fractions(galaxies[0], candels) == before and Vote.objects.count() == 1


def test_retirement_after_n_votes_and_late_votes_are_accepted(candels, users, galaxies):
    candels.retire_after = 3
    candels.save()
    g = galaxies[1]
    for user in users[:3]:
        vote_cast(project=candels, classifier=user, galaxy_id=g.pk, answers=CANDELS_SPHEROID)
    subject = ProjectSubject.objects.get(project=candels, galaxy=g)
    assert subject.retired and subject.retired_reason == "votes"
    # Served before it retired: the vote still counts.
    vote_cast(project=candels, classifier=users[3], galaxy_id=g.pk, answers=CANDELS_SPHEROID)
    assert GalaxyVoteTotal.objects.get(galaxy=g).n_votes == 4


def test_consensus_retirement(candels, users, galaxies):
    candels.consensus_fraction = 0.8
    candels.consensus_min_votes = 2
    candels.save()
    g = galaxies[2]
    vote_cast(project=candels, classifier=users[0], galaxy_id=g.pk, answers=CANDELS_SPHEROID)
    assert not ProjectSubject.objects.get(project=candels, galaxy=g).retired
    vote_cast(project=candels, classifier=users[1], galaxy_id=g.pk, answers=CANDELS_SPHEROID)
    assert ProjectSubject.objects.get(project=candels, galaxy=g).retired_reason == "consensus"


def test_undo_only_the_last_recent_vote(candels, users, galaxies):
    candels.retire_after = 2
    candels.save()
    vote_cast(project=candels, classifier=users[1], galaxy_id=galaxies[0].pk, answers=CANDELS_SPHEROID)
    vote_cast(project=candels, classifier=users[0], galaxy_id=galaxies[3].pk, answers=CANDELS_SPHEROID)
    vote_cast(project=candels, classifier=users[0], galaxy_id=galaxies[0].pk, answers=CANDELS_DISK_MERGER)
    assert ProjectSubject.objects.get(project=candels, galaxy=galaxies[0]).retired
    assert vote_undo(project=candels, classifier=users[0]) == galaxies[0].pk
    subject = ProjectSubject.objects.get(project=candels, galaxy=galaxies[0])
    assert subject.n_votes == 1 and not subject.retired  # the undone vote had retired it
    assert fractions(galaxies[0], candels)["main_class:spheroid"] == (1, 1.0)
    assert fractions(galaxies[0], candels)["main_class:disk"] == (0, 0.0)
    # The classifier may vote on it again; the earlier vote is not undoable any more (not the last).
    vote_cast(project=candels, classifier=users[0], galaxy_id=galaxies[0].pk, answers=CANDELS_SPHEROID)
    Vote.objects.filter(classifier=users[0]).update(
        created_at=Vote.objects.get(classifier=users[0], galaxy=galaxies[0]).created_at - timedelta(hours=1)
    )
    with pytest.raises(NotFound, match="nothing to undo"):
        vote_undo(project=candels, classifier=users[0])


def test_skip_gold_staff_retire_and_membership(candels, users, galaxies):
    subject_skip(project=candels, classifier=users[0], galaxy_id=galaxies[5].pk)
    subject_skip(project=candels, classifier=users[0], galaxy_id=galaxies[5].pk)  # idempotent
    assert not Vote.objects.exists()
    gold_label_set(galaxy_id=galaxies[6].pk, scheme_version=candels.scheme_version, answers=CANDELS_SPHEROID)
    vote = vote_cast(project=candels, classifier=users[1], galaxy_id=galaxies[6].pk, answers=CANDELS_DISK_MERGER)
    assert vote.is_gold and not AnswerCount.objects.filter(galaxy=galaxies[6]).exists()
    assert subjects_retire(project=candels, galaxy_ids=[galaxies[7].pk], retired=True) == 1
    assert ProjectSubject.objects.get(project=candels, galaxy=galaxies[7]).retired_reason == "staff"
    assert subjects_retire(project=candels, galaxy_ids=[galaxies[7].pk], retired=False) == 1
    candels.classifiers.add(users[2])
    with pytest.raises(Forbidden):
        vote_cast(project=candels, classifier=users[3], galaxy_id=galaxies[8].pk, answers=CANDELS_SPHEROID)
    with pytest.raises(ApplicationError, match="is not a subject"):
        vote_cast(project=candels, classifier=users[2], galaxy_id=-1, answers=CANDELS_SPHEROID)


def test_recompute_gives_identical_numbers(candels, gz2, users, galaxies, truth_votes):
    before = {v.pk: sorted(fractions(g, v).items()) for v in (candels, gz2) for g in galaxies}
    fractions_recompute(scheme_version=candels.scheme_version)
    call_command("recompute_fractions", verbosity=0)
    after = {v.pk: sorted(fractions(g, v).items()) for v in (candels, gz2) for g in galaxies}
    assert before == after
    assert version_spec(candels.scheme_version_id).kind == "flat"


@pytest.fixture
def truth_votes(candels, gz2, mock_galaxies):
    call_command(
        "simulate_votes",
        project="g-candels",
        truth=str(mock_galaxies / "truth.csv"),
        classifiers=12,
        per_galaxy=5,
        verbosity=0,
    )
    call_command(
        "simulate_votes",
        project="g-gz2",
        truth=str(mock_galaxies / "truth.csv"),
        classifiers=12,
        per_galaxy=8,
        verbosity=0,
    )
