"""The public DLA catalog API: filters, cone search, cursor pages, streamed tables, bad input,
sightlines, and the IVOA Simple Cone Search read by pyvo from a live server."""

import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from catalog.models import DLAAbsorber, DLARelease, ModelTask, ModelVersion
from catalog.sky import sky_columns

pytestmark = pytest.mark.django_db


def make_release(name: str, positions, seed: int = 0, number: int = 1) -> DLARelease:
    """A release of absorbers at the given (ra, dec), two per sightline where i is odd."""
    version, _ = ModelVersion.objects.get_or_create(
        task=ModelTask.DLA,
        variant="mock",
        number=number,
        defaults={"status": ModelVersion.Status.READY, "primary_metric": "dla_score"},
    )
    rng = np.random.default_rng(seed)
    ra = np.array([p[0] for p in positions], dtype=float)
    dec = np.array([p[1] for p in positions], dtype=float)
    sky = sky_columns(ra, dec)
    release = DLARelease.objects.create(
        name=name, model_version=version, n_sightlines=len(positions), n_absorbers=len(positions)
    )
    rows = []
    for i in range(len(positions)):
        log_nhi = float(rng.uniform(19.5, 21.8))
        rows.append(
            DLAAbsorber(
                release=release,
                identifier=f"{name}-{4000 + i // 2:04d}-55000-{i % 2 + 1:04d}-1",
                plate=4000 + i // 2,
                mjd=55000,
                fiber=i % 2 + 1,
                thing_id=None if i % 5 == 0 else 1000 + i,
                ra=ra[i],
                dec=dec[i],
                healpix=int(sky.healpix[i]),
                cx=float(sky.cx[i]),
                cy=float(sky.cy[i]),
                cz=float(sky.cz[i]),
                z_qso=float(rng.uniform(2.3, 4.4)),
                snr=float(rng.uniform(4, 25)),
                z_abs=float(rng.uniform(2.0, 4.0)),
                log_nhi=log_nhi,
                log_nhi_err=0.15,
                confidence=float(rng.uniform(0.2, 1.0)),
                kind="dla" if log_nhi >= 20.3 else "subdla",
                lyman_beta=i % 7 == 3,
                model_version=version,
            )
        )
    DLAAbsorber.objects.bulk_create(rows)
    return release


@pytest.fixture
def releases():
    rng = np.random.default_rng(1)
    positions = list(zip(rng.uniform(0, 360, 60), np.degrees(np.arcsin(rng.uniform(-1, 1, 60))), strict=True))
    positions += [(359.99, 10.0), (0.01, 10.0), (180.0, 89.99), (0.0, -89.95)]
    dr1 = make_release("DR1", positions, seed=1)
    dr2 = make_release("DR2", positions[:40], seed=2, number=2)
    return dr1, dr2


def all_pages(client, url):
    seen, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += body["results"]
        url = body["next"]
        pages += 1
    return seen, pages


def test_latest_release_by_default_and_cursor_pages(client, releases):
    dr1, dr2 = releases
    rows, pages = all_pages(client, "/api/dla/?page_size=7")
    assert len(rows) == 40 and pages == 6 and {r["release"] for r in rows} == {"DR2"}
    assert len({r["identifier"] for r in rows}) == 40
    rows, _ = all_pages(client, "/api/dla/?release=DR1&ordering=-log_nhi&page_size=25")
    assert len(rows) == DLAAbsorber.objects.filter(release=dr1).count()
    values = [r["log_nhi"] for r in rows]
    assert values == sorted(values, reverse=True)
    first = rows[0]
    assert first["sightline"] == f"{first['plate']}-{first['mjd']}-{first['fiber']}"
    assert first["model_version"] == "dla/mock v1" and first["type"] in ("dla", "subdla")
    releases_list = client.get("/api/dla/releases/").json()["results"]
    assert [r["name"] for r in releases_list] == ["DR2", "DR1"]


def test_filters_match_the_rows(client, releases):
    dr1, _ = releases
    rows, _ = all_pages(
        client, "/api/dla/?release=DR1&z_min=2.5&z_max=3.5&logn_min=20.3&conf_min=0.4&zqso_max=4.2&page_size=1000"
    )
    expected = DLAAbsorber.objects.filter(
        release=dr1, z_abs__gte=2.5, z_abs__lte=3.5, log_nhi__gte=20.3, confidence__gte=0.4, z_qso__lte=4.2
    )
    assert {r["identifier"] for r in rows} == set(expected.values_list("identifier", flat=True))
    assert all(r["type"] == "dla" for r in rows)
    subdla, _ = all_pages(client, "/api/dla/?release=DR1&type=subdla&lyman_beta=false&page_size=1000")
    assert subdla and all(r["type"] == "subdla" and not r["lyman_beta"] for r in subdla)


def test_cone_search_across_ra_zero(client, releases):
    rows, _ = all_pages(client, "/api/dla/?release=DR1&ra=0.0&dec=10&radius=0.05")
    assert {round(r["ra"], 2) for r in rows} == {359.99, 0.01}
    rows, _ = all_pages(client, "/api/dla/?release=DR1&ra=90&dec=90&radius=0.02")
    assert [r["dec"] for r in rows] == [89.99]


@pytest.mark.parametrize("fmt", ["csv", "votable", "fits"])
def test_streamed_tables_load_in_astropy_with_units_and_ucds(client, releases, fmt):
    dr1, _ = releases
    response = client.get(f"/api/dla/?release=DR1&logn_min=20.3&format={fmt}")
    assert response.status_code == 200 and response.streaming
    data = b"".join(response.streaming_content)
    assert 'filename="dla-DR1.' in response["Content-Disposition"]
    fmt_name = {"csv": "ascii.csv", "votable": "votable", "fits": "fits"}[fmt]
    table = Table.read(io.BytesIO(data), format=fmt_name)
    expected = DLAAbsorber.objects.filter(release=dr1, log_nhi__gte=20.3)
    assert len(table) == expected.count()
    assert set(map(str, table["identifier"])) == set(expected.values_list("identifier", flat=True))
    if fmt == "votable":
        from astropy.io.votable import parse_single_table

        fields = {f.name: f for f in parse_single_table(io.BytesIO(data)).fields}
        assert fields["ra"].ucd == "pos.eq.ra;meta.main" and str(fields["ra"].unit) == "deg"
        assert fields["log_nhi"].ucd == "phys.columnDensity"
    if fmt == "fits":
        header = fits.open(io.BytesIO(data))[1].header
        ucds = {header[f"TTYPE{i}"]: header.get(f"TUCD{i}") for i in range(1, header["TFIELDS"] + 1)}
        assert ucds["z_abs"] == "src.redshift;phys.absorption" and header["TUNIT7"] == "deg"


@pytest.mark.parametrize(
    "query, message",
    [
        ("ra=abc&dec=0&radius=1", "ra must be a number"),
        ("ra=10&dec=91&radius=1", "dec 91.0 outside"),
        ("ra=10&dec=0&radius=-1", "radius -1.0 outside"),
        ("ra=10&dec=0&radius=1000", "radius 1000.0 outside"),
        ("ra=10&dec=0", "needs ra, dec and radius"),
        ("format=xlsx", "format must be one of"),
        ("page_size=100000", "page_size must be an integer"),
        ("page_size=0", "page_size must be an integer"),
        ("ordering=colour", "ordering must be one of"),
        ("z_min=3&z_max=2", "z_min 3.0 is above z_max 2.0"),
        ("logn_min=nan", "outside"),
        ("conf_max=2", "conf_max 2.0 outside"),
        ("release=DR9", "no DLA release 'DR9'"),
        ("type=lls", "type must be one of"),
        ("lyman_beta=maybe", "lyman_beta must be true or false"),
    ],
)
def test_bad_parameters_are_400_with_a_message(client, releases, query, message):
    response = client.get(f"/api/dla/?{query}")
    assert response.status_code == 400, (query, response.status_code)
    assert message in response.json()["detail"]


def test_detail_and_sightline(client, releases):
    absorber = DLAAbsorber.objects.filter(release__name="DR1").first()
    body = client.get(f"/api/dla/{absorber.identifier}/").json()
    assert body["z_abs"] == pytest.approx(absorber.z_abs) and body["release"] == "DR1"
    assert client.get("/api/dla/DR1-0000-00000-0000-9/").status_code == 404
    body = client.get(f"/api/sightlines/{absorber.plate}-{absorber.mjd}-{absorber.fiber}/?release=DR1").json()
    assert body["sightline"] == f"{absorber.plate}-{absorber.mjd}-{absorber.fiber}"
    assert absorber.identifier in [a["identifier"] for a in body["absorbers"]]
    assert client.get("/api/sightlines/1-2-3/").status_code == 404
    assert client.get("/api/sightlines/1-2-3/?format=bogus").status_code == 400


def test_no_release_yet_is_a_clear_404(client):
    response = client.get("/api/dla/")
    assert response.status_code == 404 and "no DLA catalog release" in response.json()["detail"]


def test_openapi_schema_lists_the_dla_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    assert {"/api/dla/", "/api/dla/scs", "/api/dla/{identifier}/"} <= set(schema["paths"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_list_rows_are_what_the_serializer_gives(client, releases):
    from catalog.api.dla import DLAAbsorberSerializer

    rows = client.get("/api/dla/?release=DR1&page_size=5").json()["results"]
    expected = DLAAbsorberSerializer(DLAAbsorber.objects.filter(release__name="DR1").order_by("id")[:5], many=True).data
    assert rows == [dict(r) for r in expected]
