"""Environment on the platform: a mock light cone ingested as a catalog, photo-z and SORT as
versioned methods measured on the held-out light cone, the learned estimator trained through
the training service, predictions for every galaxy with a redshift, the comparison page,
``compare environment`` and the galaxy page."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from catalog.errors import ApplicationError
from catalog.models import Galaxy, ModelVersion, Prediction
from mlworker.models import TrainingRun
from mlworker.services.training import training_execute, training_start
from mlworker.synthetic.lightcone import LightconeConfig, write_lightcone
from tests.mlworker.test_emulator_platform import run_pending_chunks

pytestmark = pytest.mark.django_db
TINY_LEARNED = {"train_galaxies": 3000, "train_mocks": 1, "side_deg": 1.5, "epochs": 2, "batch_size": 256, "hidden": 32}


@pytest.fixture
def light_cone_survey(tmp_path, settings, isolated_files):
    settings.GALAXYLAB_ENVIRONMENT_EVALUATION_GALAXIES = 4000
    settings.GALAXYLAB_PREDICTION_CHUNK = 1000
    write_lightcone(tmp_path / "lc", LightconeConfig(n_galaxies=2500, side_deg=1.5), 17)
    call_command("ingest_galaxies", str(tmp_path / "lc" / "catalog.csv"), survey="cone", verbosity=0)
    return Galaxy.objects.filter(survey__name="cone")


def test_methods_are_versioned_measured_and_run_over_the_survey(light_cone_survey, client):
    n = light_cone_survey.count()
    assert 2000 < n < 3000 and light_cone_survey.filter(z_spec__isnull=False).count() > 150
    out = io.StringIO()
    call_command("environment", survey="cone", method="photoz", stdout=out)
    assert "new method version" in out.getvalue()
    call_command("environment", survey="cone", method="sort", set=["cell_mpc=6"], stdout=io.StringIO())
    run_pending_chunks()
    for method in ("photoz", "sort"):
        version = ModelVersion.objects.get(task="environment", variant=method)
        m = version.metrics
        assert version.primary_metric == "spearman_log_delta5" and m["n_test"] > 3000
        assert {"spearman", "densest_10", "xi", "xi_mean_ratio"} <= set(m) and not version.is_promoted
        assert Prediction.objects.filter(model_version=version).count() == n
    sort = ModelVersion.objects.get(task="environment", variant="sort")
    assert sort.config["sort"]["cell_mpc"] == 6
    values = Prediction.objects.filter(model_version=sort).first().values
    assert {"z", "z_err", "log_sigma5", "log_sigma10", "log_delta5", "n_cylinder", "method"} <= set(values)
    # the same method and settings: the same version, and nothing measured twice
    out = io.StringIO()
    call_command("environment", survey="cone", method="photoz", stdout=out)
    assert ModelVersion.objects.filter(task="environment", variant="photoz").count() == 1
    assert "0 subjects in 0 chunks" in out.getvalue()
    with pytest.raises(CommandError, match="unknown SORT settings"):
        call_command("environment", survey="cone", method="sort", set=["cells=3"], stdout=io.StringIO())
    with pytest.raises(CommandError, match="no promoted learned environment model"):
        call_command("environment", survey="cone", method="learned", stdout=io.StringIO())

    # the learned estimator, trained on mock light cones, measured on the same held-out cone
    run = training_start(task="environment", trigger=TrainingRun.Trigger.CLI, config=TINY_LEARNED)
    assert run.variant == "learned" and training_execute(run_id=run.pk, worker="test") == "succeeded"
    run_pending_chunks()
    learned = ModelVersion.objects.get(task="environment", variant="learned")
    assert learned.is_promoted and learned.metrics["n_test"] == sort.metrics["n_test"]
    assert Prediction.objects.filter(model_version=learned).count() == n
    assert Prediction.objects.filter(model_version=learned).first().values["log_delta5_err"] > 0

    out = io.StringIO()
    call_command("compare", "environment", stdout=out)
    text = out.getvalue()
    assert "photo-z slices" in text and "SORT" in text and "learned (network)" in text
    rows = json.loads(_json(["compare", "environment", "--json"]))
    assert {r["method"] for r in rows} == {"photoz", "sort", "learned"}
    page = client.get("/ml/compare/environment/?survey=cone").content.decode()
    assert "environment-methods" in page and "environment-agreement" in page and "SORT" in page
    png = client.get("/ml/compare/environment/xi.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert client.get("/ml/compare/environment/?survey=nope").status_code == 404
    galaxy = light_cone_survey.first()
    page = client.get(f"/galaxies/{galaxy.pk}/").content.decode()
    assert 'id="environment"' in page and "learned (network)" in page


def _json(args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_training_refuses_the_methods(light_cone_survey):
    with pytest.raises(ApplicationError, match="is not trained"):
        training_start(task="environment", variant="photoz", trigger=TrainingRun.Trigger.CLI)
