"""The GALFIT emulator on the platform: trained on mocks by the training service, predicting
for cutouts and simulation mock images; the reference fit as a versioned result set
(``fit_sersic``); the comparison page, its plots and ``compare emulator``."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from catalog.errors import ApplicationError
from catalog.models import Galaxy, MockImage, ModelVersion, Prediction
from mlworker.models import PredictionChunk, TrainingRun
from mlworker.registry import SERSIC_FIT_VARIANT
from mlworker.services import predictions as P
from mlworker.services.training import training_execute, training_start

pytestmark = pytest.mark.django_db
TINY_EMULATOR = {
    "train_galaxies": 60,
    "test_galaxies": 20,
    "epochs": 1,
    "batch_size": 16,
    "channels": [4, 8],
    "hidden": 8,
    "fitter_sample": 2,
}


def run_pending_chunks() -> None:
    for chunk in PredictionChunk.objects.filter(status=PredictionChunk.Status.PENDING):
        P.prediction_chunk_execute(chunk_id=chunk.pk, worker="test")


@pytest.fixture
def emulator_version(ingested, settings):
    settings.GALAXYLAB_PREDICTION_CHUNK = 50
    run = training_start(task="emulator", trigger=TrainingRun.Trigger.CLI, config=TINY_EMULATOR)
    assert run.variant == "mock"
    assert training_execute(run_id=run.pk, worker="test") == "succeeded"
    run_pending_chunks()
    version = ModelVersion.objects.get(task="emulator", variant="mock")
    assert version.is_promoted and version.predictions_complete
    return version


def test_trained_on_mocks_it_predicts_galaxies_and_mock_images(emulator_version):
    v = emulator_version
    assert (v.band, v.pixel_scale_arcsec, v.psf_fwhm_arcsec) == ("F160W", 0.06, 0.18)
    assert v.primary_metric == "nmad_log_n" and not v.higher_is_better
    assert {"overall", "kind_auc", "fitter", "galaxies_per_second_per_core"} <= set(v.metrics)
    galaxies = Prediction.objects.filter(model_version=v, galaxy__isnull=False)
    images = Prediction.objects.filter(model_version=v, mock_image__isnull=False)
    assert galaxies.count() == Galaxy.objects.filter(survey__name="g").count() == 40
    assert images.count() == MockImage.objects.count() == 31 * 3
    values = galaxies.first().values
    assert {"mag", "r_e_arcsec", "sersic_n", "q", "log_n_err", "p_bulge", "p_disk", "p_bulge_disk"} <= set(values)
    assert values["sersic_n"] > 0 and 0 <= values["p_disk"] <= 1 and values["mag"] is not None


def test_the_reference_fit_is_its_own_versioned_result_set_and_is_compared(emulator_version, client):
    out = io.StringIO()
    call_command("fit_sersic", survey="g", stdout=out)
    text = out.getvalue()
    assert "new method version" in text and "median |dn|/n" in text
    fit = ModelVersion.objects.get(task="emulator", variant=SERSIC_FIT_VARIANT)
    assert not fit.is_promoted and fit.metrics["median_rel_dn_bright"] < 0.05 and not fit.weights
    run_pending_chunks()
    fits = Prediction.objects.filter(model_version=fit)
    assert fits.count() == 40
    for values in fits.values_list("values", flat=True):
        assert values["ok"] is True or values["message"]  # a failed fit is flagged and says why
    # a second call reuses the method version and fits only what it has not fitted
    out = io.StringIO()
    call_command("fit_sersic", survey="g", stdout=out)
    assert ModelVersion.objects.filter(task="emulator", variant=SERSIC_FIT_VARIANT).count() == 1
    assert "0 subjects in 0 chunks" in out.getvalue()
    with pytest.raises(CommandError, match="unknown fit settings"):
        call_command("fit_sersic", survey="g", set=["bogus=1"], stdout=io.StringIO())
    with pytest.raises(CommandError, match="no survey"):
        call_command("fit_sersic", survey="nope", stdout=io.StringIO())

    compare_emulator_command_and_page(emulator_version, client)


def compare_emulator_command_and_page(emulator_version, client):
    out = io.StringIO()
    call_command("compare", "emulator", stdout=out)
    text = out.getvalue()
    assert "speed per CPU core" in text and "emulator vs truth (held-out mocks)" in text
    assert "reference fit vs truth" in text and "emulator vs reference fit on data" in text
    out = io.StringIO()
    call_command("compare", "emulator", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["data"]["n"] > 0 and report["speed"]["ratio"] > 0
    page = client.get("/ml/compare/emulator/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Speed per CPU core" in html and "Emulator against the reference fit on data without truth" in html
    for kind in ("held-out", "data"):
        png = client.get(f"/ml/versions/{emulator_version.pk}/emulator/{kind}.png")
        assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert client.get("/ml/compare/emulator/?version=abc").status_code == 404
    assert "version must be a version number" in client.get("/ml/compare/emulator/?version=abc").content.decode()


def test_the_fit_variant_cannot_be_trained(ingested):
    with pytest.raises(ApplicationError, match="not trained"):
        training_start(task="emulator", variant=SERSIC_FIT_VARIANT, trigger=TrainingRun.Trigger.CLI)
    assert not TrainingRun.objects.exists()
