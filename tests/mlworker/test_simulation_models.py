"""Simulated galaxies on the platform: the phenomena model trained on ingested runs' metadata
(held out by run), the emulator and it predicting every mock image, and the run page's
timeline figure and its CSV."""

import csv
import io

import pytest
from django.core.management import call_command

from catalog.errors import ApplicationError
from catalog.models import MockImage, ModelVersion, Prediction, SimulationRun
from mlworker.models import TrainingRun
from mlworker.services.training import training_execute, training_start
from tests.mlworker.test_emulator_platform import TINY_EMULATOR, run_pending_chunks

pytestmark = pytest.mark.django_db
TINY_PHENOMENA = {
    "epochs": 1,
    "batch_size": 16,
    "channels": [4, 8],
    "hidden": 8,
    "held_out_modulus": 2,
    "min_train_runs": 1,
    "min_test_runs": 1,
}


@pytest.fixture
def two_runs(mock_simulation, isolated_files, settings):
    settings.GALAXYLAB_PREDICTION_CHUNK = 100
    for name in ("VMOCK01", "VMOCK02"):
        call_command("ingest_simulation", str(mock_simulation / name), survey="vela", verbosity=0)
    return SimulationRun.objects.order_by("pk")


def train(task: str, config: dict) -> ModelVersion:
    run = training_start(task=task, trigger=TrainingRun.Trigger.CLI, config=config)
    assert training_execute(run_id=run.pk, worker="test") == "succeeded"
    run_pending_chunks()
    return ModelVersion.objects.get(task=task, number=1)


def test_phenomena_model_needs_enough_runs_and_says_so(two_runs):
    run = training_start(task="phenomena", trigger=TrainingRun.Trigger.CLI)
    with pytest.raises(ApplicationError, match="at least 8 training and 2 held-out runs"):
        training_execute(run_id=run.pk, worker="test")
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "held-out runs" in run.error


def test_phenomena_and_emulator_on_every_mock_image_and_the_timeline(two_runs, client):
    phenomena = train("phenomena", TINY_PHENOMENA)
    m = phenomena.metrics
    held_out = [r.name for r in two_runs if r.pk % 2 == 0]  # run id % held_out_modulus == 0
    assert m["n_train_runs"] == 1 and m["n_test_runs"] == 1 and m["test_runs"] == held_out
    assert {"model", "redshift_baseline", "score", "baseline_score"} <= set(m)
    assert phenomena.dataset.description["test_runs"] == held_out
    n_images = MockImage.objects.count()
    assert n_images == 2 * 31 * 3
    values = Prediction.objects.filter(model_version=phenomena).first().values
    assert {"p_pre", "p_blue_nugget", "p_post", "p_recent_merger", "phase"} <= set(values)
    assert Prediction.objects.filter(model_version=phenomena).count() == n_images
    emulator = train("emulator", TINY_EMULATOR)
    assert Prediction.objects.filter(model_version=emulator, mock_image__isnull=False).count() == n_images

    run = two_runs[0]
    page = client.get(f"/simulations/{run.pk}/").content.decode()
    assert f"/simulations/{run.pk}/timeline.png" in page and str(emulator) in page and str(phenomena) in page
    png = client.get(f"/simulations/{run.pk}/timeline.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    response = client.get(f"/simulations/{run.pk}/timeline.csv")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 31 * (3 + 1)  # a row per camera and a median row per snapshot
    assert {"p_bulge", "p_disk", "p_bulge_disk", "sersic_n", "r_e_arcsec", "p_blue_nugget", "p_recent_merger"} <= set(
        rows[0]
    )
    medians = [r for r in rows if r["camera"] == "median"]
    assert len(medians) == 31 and all(r["p_bulge"] != "" for r in medians)
    assert {r["compaction_phase"] for r in rows} <= {"pre", "blue_nugget", "post"}
    assert client.get("/simulations/999999/timeline.png").status_code == 404
