"""Shared fixtures: isolated file roots, service checks and session-wide mock data."""

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("GALAXYLAB_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def service_missing(what: str) -> None:
    """Skip, or fail when GALAXYLAB_REQUIRE_SERVICES=1 (CI), because a service is missing."""
    message = f"{what} is not available"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and GALAXYLAB_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser():
    """Debian's chromium, driven by Playwright (tests that use it are marked browser)."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def pytest_runtest_setup(item):
    if item.get_closest_marker("browser") and not Path(CHROMIUM).exists():
        service_missing(f"Debian's chromium ({CHROMIUM}; apt-get install chromium)")
    if (
        item.get_closest_marker("postgres")
        and settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql"
    ):
        service_missing("PostgreSQL (DATABASE_URL points elsewhere)")
    if item.get_closest_marker("redis"):
        url = settings.CELERY_BROKER_URL
        if not url.startswith("redis://") or not _reachable(url, 6379):
            service_missing(f"a Redis broker at {url}")


@pytest.fixture(autouse=True)
def fresh_process_caches():
    """Per-process caches (API tokens, projects) start empty in every test."""
    from accounts.authentication import CachedTokenAuthentication
    from labeling.api import forget_cached_projects

    CachedTokenAuthentication.forget()
    forget_cached_projects()


@pytest.fixture(autouse=True)
def isolated_files(settings, tmp_path):
    """Every test writes media, packs and renders under its own temporary directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.GALAXYLAB_PACK_ROOT = str(tmp_path / "packs")
    settings.GALAXYLAB_RENDER_CACHE = str(tmp_path / "renders")
    from catalog import packstore

    packstore.release_maps()
    return tmp_path


def files_under(root: Path) -> list[Path]:
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(scope="session")
def mock_galaxies(tmp_path_factory) -> Path:
    """40 mock galaxies with cutouts (catalog.csv, truth.csv, cutouts/)."""
    from mlworker.synthetic.galaxies import write_galaxy_mock

    out = tmp_path_factory.mktemp("mock_galaxies")
    write_galaxy_mock(out, 40, seed=5)
    return out


@pytest.fixture(scope="session")
def mock_spectra(tmp_path_factory) -> Path:
    """24 mock sightlines (spectra/, sightlines_truth.csv, absorbers_truth.csv)."""
    from mlworker.synthetic.spectra import write_spectra_mock

    out = tmp_path_factory.mktemp("mock_spectra")
    write_spectra_mock(out, 24, seed=6, dla_boost=4.0)
    return out


@pytest.fixture(scope="session")
def mock_simulation(tmp_path_factory) -> Path:
    """Two mock runs seen by 3 cameras."""
    from mlworker.synthetic.simulation import write_simulation_mock

    out = tmp_path_factory.mktemp("mock_simulation")
    write_simulation_mock(out, 2, seed=7, n_cameras=3)
    return out


@pytest.fixture
def ingested(mock_galaxies, mock_spectra, mock_simulation):
    """The mocks ingested as surveys g (galaxies with cutouts), q (spectra) and v (run VMOCK01)."""
    from django.core.management import call_command

    call_command(
        "ingest_galaxies",
        str(mock_galaxies / "catalog.csv"),
        survey="g",
        cutouts=str(mock_galaxies / "cutouts"),
        band="F160W",
        verbosity=0,
    )
    call_command("ingest_spectra", str(mock_spectra / "spectra"), survey="q", verbosity=0)
    call_command("ingest_simulation", str(mock_simulation / "VMOCK01"), survey="v", verbosity=0)
