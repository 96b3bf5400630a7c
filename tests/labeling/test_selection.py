"""Choosing the next galaxy: never twice, never retired, by strategy, gold checks at a rate."""

import random
import threading

import pytest
from django.db import connection

from labeling.models import ProjectSubject
from labeling.selectors import subject_next
from labeling.services import gold_label_set, subject_skip, subjects_retire, vote_cast
from tests.labeling.conftest import CANDELS_SPHEROID

pytestmark = pytest.mark.django_db


def test_never_the_same_galaxy_twice_and_never_retired(candels, users, galaxies):
    retired = [g.pk for g in galaxies[:5]]
    subjects_retire(project=candels, galaxy_ids=retired, retired=True)
    rng = random.Random(1)
    seen = []
    while (subject := subject_next(project=candels, classifier=users[0], rng=rng)) is not None:
        assert subject.galaxy_id not in seen and subject.galaxy_id not in retired
        seen.append(subject.galaxy_id)
        if len(seen) % 3 == 0:
            subject_skip(project=candels, classifier=users[0], galaxy_id=subject.galaxy_id)
        else:
            vote_cast(project=candels, classifier=users[0], galaxy_id=subject.galaxy_id, answers=CANDELS_SPHEROID)
    assert len(seen) == len(galaxies) - len(retired)
    # Someone else still gets galaxies; queued ones can be excluded.
    first = subject_next(project=candels, classifier=users[1], rng=random.Random(2))
    second = subject_next(project=candels, classifier=users[1], exclude=[first.galaxy_id], rng=random.Random(2))
    assert first.galaxy_id != second.galaxy_id


def test_priority_and_active_strategies(candels, users, galaxies):
    candels.strategy = "priority"
    candels.save()
    ProjectSubject.objects.filter(project=candels, galaxy=galaxies[7]).update(priority=10)
    ProjectSubject.objects.filter(project=candels, galaxy=galaxies[3]).update(priority=5)
    assert subject_next(project=candels, classifier=users[0]).galaxy_id == galaxies[7].pk
    assert subject_next(project=candels, classifier=users[0], exclude=[galaxies[7].pk]).galaxy_id == galaxies[3].pk
    candels.strategy = "active"
    candels.save()
    # No model scores yet: random.
    assert subject_next(project=candels, classifier=users[0], rng=random.Random(5)) is not None
    ProjectSubject.objects.filter(project=candels, galaxy=galaxies[11]).update(active_score=0.9)
    ProjectSubject.objects.filter(project=candels, galaxy=galaxies[12]).update(active_score=0.4)
    assert subject_next(project=candels, classifier=users[0]).galaxy_id == galaxies[11].pk
    vote_cast(project=candels, classifier=users[0], galaxy_id=galaxies[11].pk, answers=CANDELS_SPHEROID)
    assert subject_next(project=candels, classifier=users[0]).galaxy_id == galaxies[12].pk


def test_gold_checks_are_injected_at_the_configured_rate(candels, users, galaxies):
    gold = [g.pk for g in galaxies[:10]]
    for pk in gold:
        gold_label_set(galaxy_id=pk, scheme_version=candels.scheme_version, answers=CANDELS_SPHEROID)
    candels.gold_rate = 0.25
    candels.save()
    rng = random.Random(3)
    served = [subject_next(project=candels, classifier=users[0], rng=rng).galaxy_id for _ in range(400)]
    share = sum(pk in gold for pk in served) / len(served)
    assert 0.18 < share < 0.32
    candels.gold_rate = 0.0
    candels.save()
    assert not any(subject_next(project=candels, classifier=users[0], rng=rng).galaxy_id in gold for _ in range(100))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_classifiers_asking_at_once_both_get_galaxies(candels, users):
    results, errors = {}, []

    def ask(user):
        try:
            results[user.pk] = subject_next(project=candels, classifier=user)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(u,)) for u in users[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(r is not None for r in results.values()) and len(results) == 2
