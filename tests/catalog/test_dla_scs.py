"""IVOA Simple Cone Search 1.03 at /api/dla/scs, read by pyvo from a live server, and the cone
search checked against astropy's SkyCoord.separation by property-based tests."""

import io

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import DLAAbsorber
from catalog.selectors import cone_filter
from tests.catalog.test_dla_api import make_release

pytestmark = pytest.mark.django_db


def _positions():
    rng = np.random.default_rng(5)
    # clustered where cones are hard: around RA 0/360, and both poles; plus the whole sky
    ra = np.concatenate([rng.uniform(-3, 3, 80) % 360, rng.uniform(0, 360, 60), rng.uniform(0, 360, 60)])
    dec = np.concatenate([rng.uniform(-5, 5, 80), rng.uniform(85, 90, 60), rng.uniform(-90, -85, 60)])
    ra = np.concatenate([ra, rng.uniform(0, 360, 60)])
    dec = np.concatenate([dec, np.degrees(np.arcsin(rng.uniform(-1, 1, 60)))])
    return list(zip(ra, dec, strict=True))


@pytest.fixture
def release():
    return make_release("DR1", _positions(), seed=3)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # like every live-server test here
def test_pyvo_cone_search_against_a_live_server(live_server, release):
    import pyvo

    service = pyvo.dal.SCSService(f"{live_server.url}/api/dla/scs")
    result = service.search(pos=(0.5, 0.0), radius=2.0)
    table = result.to_table()
    coords = SkyCoord(
        list(DLAAbsorber.objects.values_list("ra", flat=True)),
        list(DLAAbsorber.objects.values_list("dec", flat=True)),
        unit="deg",
    )
    ids = np.array(DLAAbsorber.objects.values_list("identifier", flat=True))
    inside = coords.separation(SkyCoord(0.5, 0.0, unit="deg")).deg <= 2.0
    assert len(table) == inside.sum() > 5
    assert set(map(str, table["identifier"])) == set(ids[inside])
    assert {c for c in table["ra"]} and float(np.max(table["ra"])) > 350  # across RA 0/360
    # pyvo finds the main id and position columns by their SCS 1.03 UCDs
    field_ucds = {f.ucd for f in result.fielddescs}
    assert {"ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"} <= field_ucds


def test_metadata_query_and_maxrec_overflow(client, release):
    meta = parse(io.BytesIO(client.get("/api/dla/scs?RA=0&DEC=0&SR=0").content)).get_first_table()
    assert len(meta.array) == 0
    ucds = [f.ucd for f in meta.fields]
    assert ucds.count("ID_MAIN") == ucds.count("POS_EQ_RA_MAIN") == ucds.count("POS_EQ_DEC_MAIN") == 1
    ra_field = next(f for f in meta.fields if f.ucd == "POS_EQ_RA_MAIN")
    assert ra_field.datatype == "double"
    response = client.get("/api/dla/scs?RA=0&DEC=88&SR=10&MAXREC=5")
    votable = parse(io.BytesIO(response.content))
    infos = {i.name: i.value for i in votable.resources[0].infos}
    assert infos["QUERY_STATUS"] == "OVERFLOW" and len(votable.get_first_table().array) == 5
    response = client.get("/api/dla/scs?RA=0&DEC=88&SR=10")
    infos = {i.name: i.value for i in parse(io.BytesIO(response.content)).resources[0].infos}
    assert infos["QUERY_STATUS"] == "OK"


@pytest.mark.parametrize(
    "query, message",
    [
        ("RA=abc&DEC=0&SR=1", "RA must be a number"),
        ("RA=10&DEC=91&SR=1", "DEC 91.0 outside"),
        ("RA=10&DEC=0&SR=-1", "SR -1.0 outside"),
        ("RA=10&DEC=0&SR=500", "SR 500.0 outside"),
        ("DEC=0&SR=1", "RA is required"),
        ("RA=10&DEC=0", "SR is required"),
        ("RA=10&DEC=0&SR=1&MAXREC=-3", "MAXREC must be"),
        ("RA=10&DEC=0&SR=1&RELEASE=DR7", "no DLA release"),
    ],
)
def test_errors_are_votables_with_an_error_info(client, release, query, message):
    response = client.get(f"/api/dla/scs?{query}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    votable = parse(io.BytesIO(response.content))
    errors = [i.value for i in votable.resources[0].infos if i.name == "Error"]
    assert errors and message in errors[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ra=st.one_of(st.floats(0, 360, exclude_max=True), st.floats(359.0, 360, exclude_max=True), st.floats(0, 1.0)),
    dec=st.one_of(st.floats(-90, 90), st.floats(84, 90), st.floats(-90, -84)),
    radius=st.floats(1e-3, 30.0),
)
def test_cone_search_is_exact_against_astropy(release, ra, dec, radius):
    rows = DLAAbsorber.objects.values_list("identifier", "ra", "dec")
    ids = np.array([r[0] for r in rows])
    coords = SkyCoord([r[1] for r in rows], [r[2] for r in rows], unit="deg")
    separation = coords.separation(SkyCoord(ra, dec, unit="deg")).deg
    clear = np.abs(separation - radius) > 1e-9  # points on the circle itself may go either way
    found = set(
        cone_filter(DLAAbsorber.objects.all(), ra=ra, dec=dec, radius_deg=radius).values_list("identifier", flat=True)
    )
    assert found & set(ids[clear]) == set(ids[clear & (separation <= radius)])
