"""The labeling REST API: status codes, messages, token auth, staff views, OpenAPI schema."""

import pytest
import yaml
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.api import forget_cached_projects
from labeling.models import Vote
from tests.labeling.conftest import CANDELS_SPHEROID

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(users):
    client = APIClient()
    client.force_authenticate(users[0])
    return client


def test_next_vote_conflict_undo_skip(api, candels, galaxies):
    subject = api.get("/api/projects/g-candels/next/").json()
    assert {"galaxy", "source_id", "cutouts"} <= set(subject) and ".png?v=" in subject["cutouts"][0]["png"]
    response = api.post(
        "/api/projects/g-candels/votes/",
        {"galaxy": subject["galaxy"], "answers": CANDELS_SPHEROID, "seconds_spent": 3.5},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert set(response.json()["answers"]) == set(CANDELS_SPHEROID)
    again = api.post(
        "/api/projects/g-candels/votes/", {"galaxy": subject["galaxy"], "answers": CANDELS_SPHEROID}, format="json"
    )
    assert again.status_code == 409 and "already voted" in again.json()["detail"]
    bad = api.post(
        "/api/projects/g-candels/votes/", {"galaxy": subject["galaxy"], "answers": ["main_class:blob"]}, format="json"
    )
    assert bad.status_code == 400 and "not an answer of candels" in bad.json()["detail"]
    missing = api.post("/api/projects/g-candels/votes/", {"answers": CANDELS_SPHEROID}, format="json")
    assert missing.status_code == 400 and "galaxy" in missing.json()
    assert Vote.objects.count() == 1
    undo = api.post("/api/projects/g-candels/votes/undo/")
    assert undo.status_code == 200 and undo.json() == {"galaxy": subject["galaxy"]}
    assert api.post("/api/projects/g-candels/votes/undo/").status_code == 404
    skip = api.post("/api/projects/g-candels/skips/", {"galaxy": galaxies[9].pk}, format="json")
    assert skip.status_code == 201
    assert api.get(f"/api/projects/g-candels/subjects/{subject['galaxy']}/").json()["galaxy"] == subject["galaxy"]


def test_token_auth_permissions_and_fractions(candels, users, galaxies):
    anonymous = APIClient()
    assert anonymous.get("/api/projects/g-candels/next/").status_code in (401, 403)
    token = Token.objects.create(user=users[1])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert (
        client.post(
            "/api/projects/g-candels/votes/", {"galaxy": galaxies[0].pk, "answers": CANDELS_SPHEROID}, format="json"
        ).status_code
        == 201
    )
    assert client.get("/api/votes/").status_code == 403  # staff only
    candels.classifiers.add(users[2])
    forget_cached_projects()  # as after PROJECT_TTL_SECONDS
    forbidden = client.post(
        "/api/projects/g-candels/votes/", {"galaxy": galaxies[1].pk, "answers": CANDELS_SPHEROID}, format="json"
    )
    assert forbidden.status_code == 403 and "not a classifier" in forbidden.json()["detail"]
    fractions = anonymous.get(f"/api/galaxies/{galaxies[0].pk}/fractions/").json()
    entry = fractions["schemes"][0]
    assert entry["scheme"] == "candels" and entry["n_votes"] == 1
    assert {"question": "main_class", "answer": "spheroid"}.items() <= next(
        a for a in entry["answers"] if a["answer"] == "spheroid"
    ).items()


def test_staff_votes_list_and_retire(candels, users, galaxies, admin_user):
    staff = APIClient()
    staff.force_authenticate(admin_user)
    staff.post("/api/projects/g-candels/votes/", {"galaxy": galaxies[0].pk, "answers": CANDELS_SPHEROID}, format="json")
    votes = staff.get("/api/votes/", {"project": "g-candels"}).json()
    assert votes["count"] == 1 and votes["results"][0]["classifier"] == admin_user.username
    assert staff.get("/api/votes/", {"galaxy": "x"}).status_code == 400
    retired = staff.post(
        "/api/projects/g-candels/retire/", {"galaxies": [galaxies[2].pk], "retired": True}, format="json"
    )
    assert retired.json() == {"changed": 1}


def test_openapi_schema_lists_the_endpoints(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths = schema["paths"]
    for path in (
        "/api/projects/{slug}/votes/",
        "/api/projects/{slug}/next/",
        "/api/projects/{slug}/votes/undo/",
        "/api/projects/{slug}/skips/",
        "/api/votes/",
        "/api/galaxies/{galaxy_id}/fractions/",
        "/api/galaxies/",
    ):
        assert path in paths, path
    assert {"201", "400", "409"} <= set(paths["/api/projects/{slug}/votes/"]["post"]["responses"])
