"""Pages, renders, the read API and the health endpoint."""

import json

import pytest
from django.urls import reverse

from catalog.models import Cutout, Galaxy, MockImage, QuasarSpectrum, SimulationRun, Survey

pytestmark = pytest.mark.django_db


def test_pages_render(client, ingested):
    galaxy = Galaxy.objects.first()
    spectrum = QuasarSpectrum.objects.first()
    run = SimulationRun.objects.first()
    for url, text in [
        (reverse("catalog:home"), "Surveys"),
        (reverse("catalog:survey", args=["g"]), "40 galaxies"),
        (reverse("catalog:survey", args=["g"]) + "?mag_max=22&q=MOCK", "galaxies"),
        (reverse("catalog:survey", args=["q"]), str(spectrum)),
        (reverse("catalog:survey", args=["v"]), run.name),
        (reverse("catalog:galaxy", args=[galaxy.pk]), galaxy.source_id),
        (reverse("catalog:spectrum", args=[spectrum.pk]), "z_qso"),
        (reverse("catalog:simulation-run", args=[run.pk]) + "?camera=1", "blue nugget"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode(), url


def test_cone_on_survey_page_and_bad_input(client, ingested):
    g = Galaxy.objects.order_by("pk").first()
    response = client.get(reverse("catalog:survey", args=["g"]), {"ra": g.ra, "dec": g.dec, "radius": 0.0001})
    assert g.source_id in response.content.decode()
    response = client.get(reverse("catalog:survey", args=["g"]), {"ra": 500, "dec": 0, "radius": 1})
    assert response.status_code == 200 and "ra 500.0 outside" in response.content.decode()


def test_renders_are_png_and_cached(client, ingested, isolated_files):
    cutout = Cutout.objects.first()
    for url in (
        reverse("catalog:cutout-png", args=[cutout.pk]),
        reverse("catalog:cutout-png", args=[cutout.pk]) + "?stretch=log&zoom=2&contrast=2",
        reverse("catalog:mock-image-png", args=[MockImage.objects.first().pk]),
        reverse("catalog:spectrum-png", args=[QuasarSpectrum.objects.first().pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((isolated_files / "renders").rglob("*.png"))) == 4
    fits_response = client.get(reverse("catalog:cutout-fits", args=[cutout.pk]))
    assert (
        fits_response.status_code == 200
        and b"".join(fits_response.streaming_content) == cutout.fits_file.open("rb").read()
    )
    for name in ("spectrum-fits", "mock-image-fits"):
        obj = QuasarSpectrum.objects.first() if name == "spectrum-fits" else MockImage.objects.first()
        assert client.get(reverse(f"catalog:{name}", args=[obj.pk])).status_code == 200
    bad = client.get(reverse("catalog:cutout-png", args=[cutout.pk]) + "?stretch=rainbow")
    assert bad.status_code == 400 and b"stretch must be one of" in bad.content
    assert client.get(reverse("catalog:cutout-png", args=[999999])).status_code == 404


def test_api(client, ingested):
    surveys = client.get("/api/surveys/").json()
    assert {s["name"] for s in surveys["results"]} == {"g", "q", "v"}
    g = next(s for s in surveys["results"] if s["name"] == "g")
    assert g["bands"][0]["pixel_scale_arcsec"] == pytest.approx(0.06)
    target = Galaxy.objects.order_by("pk")[5]
    found = client.get("/api/galaxies/", {"survey": "g", "ra": target.ra, "dec": target.dec, "radius": 1e-4}).json()
    assert [r["source_id"] for r in found["results"]] == [target.source_id]
    assert client.get("/api/galaxies/", {"mag_max": 21}).json()["count"] == Galaxy.objects.filter(mag__lte=21).count()
    for params, message in (
        ({"ra": 1, "dec": 2}, "needs ra, dec and radius"),
        ({"ra": 1, "dec": 95, "radius": 1}, "dec 95.0 outside"),
        ({"mag_max": "bright"}, "mag_max must be a number"),
    ):
        response = client.get("/api/galaxies/", params)
        assert response.status_code == 400 and message in response.json()["detail"]
    assert client.get("/api/galaxies/", {"survey": "nope"}).status_code == 404
    spectra = client.get("/api/spectra/", {"z_min": 3.0}).json()
    assert spectra["count"] == QuasarSpectrum.objects.filter(z_qso__gte=3.0).count()


def test_health_reports_database_broker_and_workers(client, settings):
    from django.utils import timezone

    from mlworker.models import WorkerHeartbeat

    settings.CELERY_BROKER_URL = "memory://"
    body = client.get("/health/").json()
    assert body["database"]["ok"] and body["broker"]["ok"] and body["status"] == "degraded"
    assert body["workers"] == {"ok": False, "online": []}
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="w@h", queues="default,gpu", pid=1, started_at=now, last_seen=now)
    body = client.get("/health/").json()
    assert body["status"] == "ok" and body["workers"]["online"][0]["queues"] == ["default", "gpu"]
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/health/")
    assert response.status_code == 503 and json.loads(response.content)["broker"]["ok"] is False


def test_survey_admin_and_changelists(admin_client, ingested, django_capture_on_commit_callbacks):
    for model in (
        "survey",
        "band",
        "galaxy",
        "cutout",
        "quasarspectrum",
        "simulationrun",
        "snapshot",
        "mergerevent",
        "mockimage",
        "imageshard",
        "spectrumshard",
    ):
        url = reverse(f"admin:catalog_{model}_changelist")
        assert admin_client.get(url).status_code == 200, url
        assert admin_client.get(url, {"q": "1"}).status_code == 200, url
    galaxy = Galaxy.objects.first()
    page = admin_client.get(reverse("admin:catalog_galaxy_change", args=[galaxy.pk])).content.decode()
    assert reverse("catalog:cutout-png", args=[galaxy.cutouts.first().pk]) in page
    survey = Survey.objects.get(name="q")
    confirm = admin_client.get(reverse("admin:catalog_survey_delete", args=[survey.pk]))
    assert confirm.status_code == 200 and "all its galaxies, cutouts, spectra" in confirm.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:catalog_survey_delete", args=[survey.pk]), {"post": "yes"})
    assert not Survey.objects.filter(name="q").exists() and not QuasarSpectrum.objects.exists()
    response = admin_client.post(
        reverse("admin:catalog_survey_changelist"),
        {"action": "delete_with_everything", "_selected_action": [Survey.objects.get(name="v").pk]},
    )
    assert response.status_code == 302 and not SimulationRun.objects.exists()
