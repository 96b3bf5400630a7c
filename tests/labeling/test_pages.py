"""The voting pages: project list, voting page, staff dashboard and its statistics."""

import json
import re

import pytest
from django.urls import reverse

from labeling.selectors import classifier_stats
from labeling.services import gold_label_set, vote_cast
from tests.labeling.conftest import CANDELS_DISK_MERGER, CANDELS_SPHEROID

pytestmark = pytest.mark.django_db


def test_pages_need_login_and_staff(client, candels, users):
    assert client.get(reverse("labeling:projects")).status_code == 302
    client.force_login(users[0])
    page = client.get(reverse("labeling:projects"))
    assert page.status_code == 200 and "CANDELS on g" in page.content.decode()
    vote = client.get(reverse("labeling:vote", args=[candels.slug]))
    config = json.loads(re.search(r'id="vote-config"[^>]*>(.*?)</script>', vote.content.decode(), re.S).group(1))
    assert config["scheme"]["kind"] == "flat" and [q["key"] for q in config["scheme"]["questions"]][0] == "main_class"
    assert client.get(reverse("labeling:dashboard", args=[candels.slug])).status_code == 302  # staff only
    candels.classifiers.add(users[1])
    assert client.get(reverse("labeling:vote", args=[candels.slug])).status_code == 403


def test_dashboard_statistics(admin_client, candels, users, galaxies):
    g = galaxies
    # Three classifiers on two galaxies: the consensus of g0 is spheroid, of g1 disk.
    for u in users[:3]:
        vote_cast(project=candels, classifier=u, galaxy_id=g[0].pk, answers=CANDELS_SPHEROID, seconds_spent=4.0)
    vote_cast(project=candels, classifier=users[0], galaxy_id=g[1].pk, answers=CANDELS_DISK_MERGER, seconds_spent=8.0)
    vote_cast(project=candels, classifier=users[1], galaxy_id=g[1].pk, answers=CANDELS_DISK_MERGER, seconds_spent=2.0)
    vote_cast(project=candels, classifier=users[2], galaxy_id=g[1].pk, answers=CANDELS_SPHEROID, seconds_spent=6.0)
    gold_label_set(galaxy_id=g[5].pk, scheme_version=candels.scheme_version, answers=CANDELS_SPHEROID)
    vote_cast(project=candels, classifier=users[0], galaxy_id=g[5].pk, answers=CANDELS_SPHEROID)
    vote_cast(project=candels, classifier=users[2], galaxy_id=g[5].pk, answers=CANDELS_DISK_MERGER)
    stats = {row["classifier"]: row for row in classifier_stats(project=candels)}
    assert stats["c0"]["votes"] == 2 and stats["c0"]["agreement"] == 1.0 and stats["c0"]["median_seconds"] == 6.0
    assert stats["c2"]["agreement"] == 0.5 and stats["c2"]["gold_votes"] == 1
    assert stats["c0"]["gold_accuracy"] == 1.0 and stats["c2"]["gold_accuracy"] == 0.0
    page = admin_client.get(reverse("labeling:dashboard", args=[candels.slug])).content.decode()
    assert "classifier-stats" in page and "c2" in page and "of 39 galaxies retired" in page
