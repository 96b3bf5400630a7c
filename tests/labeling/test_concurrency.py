"""Many classifiers voting at once on PostgreSQL: every accepted vote counted exactly once,
every duplicate refused, no deadlock."""

import random
import threading
from collections import Counter

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Sum

from catalog.errors import Conflict
from catalog.models import Galaxy, Survey
from catalog.sky import sky_columns
from labeling.models import AnswerCount, GalaxyVoteTotal, ProjectSubject, Vote, VoteAnswer
from labeling.services import project_create, vote_cast

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]
CLIENTS, VOTES_EACH, DUPLICATE_SHARE = 20, 200, 0.1
ANSWERS = [
    ["main_class:spheroid", "interaction:none", "clumpiness_patchiness:c0_p0"],
    [
        "main_class:disk",
        "main_class:irregular",
        "interaction:merger",
        "structure:asymmetric",
        "clumpiness_patchiness:c1_p1",
    ],
    ["main_class:compact", "interaction:companion", "clumpiness_patchiness:c0_p0"],
]


def test_twenty_clients_two_hundred_votes_each():
    survey = Survey.objects.create(name="busy", kind=Survey.Kind.IMAGING)
    ra, dec = np.linspace(10, 11, VOTES_EACH), np.zeros(VOTES_EACH)
    sky = sky_columns(ra, dec)
    Galaxy.objects.bulk_create(
        Galaxy(
            survey=survey,
            source_id=f"B{i}",
            ra=ra[i],
            dec=dec[i],
            healpix=int(sky.healpix[i]),
            cx=sky.cx[i],
            cy=sky.cy[i],
            cz=sky.cz[i],
            mag=22.0,
        )
        for i in range(VOTES_EACH)
    )
    project = project_create(slug="busy", name="busy", scheme_slug="candels", survey=survey, retire_after=1000)
    galaxy_ids = list(ProjectSubject.objects.filter(project=project).values_list("galaxy_id", flat=True))
    User = get_user_model()
    clients = [User.objects.create_user(username=f"load{i}") for i in range(CLIENTS)]
    accepted, refused, failures = Counter(), Counter(), []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(user, seed):
        rng = random.Random(seed)
        order = galaxy_ids[:]
        rng.shuffle(order)
        # Deliberate duplicates: some galaxies are voted on a second time, a little later.
        plan = order + [order[i] for i in rng.sample(range(30, len(order)), int(DUPLICATE_SHARE * len(order)))]
        plan.sort(key=lambda g: order.index(g) + (rng.randint(1, 20) if plan.count(g) > 1 else 0))
        try:
            start.wait()
            for galaxy_id in plan:
                try:
                    vote_cast(project=project, classifier=user, galaxy_id=galaxy_id, answers=rng.choice(ANSWERS))
                    with lock:
                        accepted[user.pk] += 1
                except Conflict:
                    with lock:
                        refused[user.pk] += 1
        except Exception as exc:  # noqa: BLE001 - any other error (a deadlock) fails the test
            failures.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(u, i)) for i, u in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not failures, failures[:3]
    assert all(accepted[u.pk] == VOTES_EACH for u in clients)
    assert all(refused[u.pk] == int(DUPLICATE_SHARE * VOTES_EACH) for u in clients)
    assert Vote.objects.count() == CLIENTS * VOTES_EACH
    # Counts equal the votes exactly, galaxy by galaxy and answer by answer.
    votes_per_galaxy = dict(Vote.objects.values_list("galaxy_id").annotate(n=Count("id")).values_list("galaxy_id", "n"))
    totals = dict(GalaxyVoteTotal.objects.values_list("galaxy_id", "n_votes"))
    assert totals == votes_per_galaxy and set(totals.values()) == {CLIENTS}
    per_answer = {
        (g, a): n for g, a, n in VoteAnswer.objects.values_list("vote__galaxy_id", "answer_id").annotate(n=Count("id"))
    }
    counted = {(g, a): n for g, a, n in AnswerCount.objects.values_list("galaxy_id", "answer_id", "count") if n}
    assert counted == per_answer
    assert ProjectSubject.objects.aggregate(total=Sum("n_votes"))["total"] == CLIENTS * VOTES_EACH
    for row in AnswerCount.objects.all()[:50]:
        assert row.fraction == pytest.approx(row.count / CLIENTS)
