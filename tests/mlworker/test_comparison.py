"""Model against humans: the held-out comparison, its pages and plots, the galaxy page, the
voting queue's active scores, and the galaxy morphology catalog API in every format."""

import io
import json

import numpy as np
import pytest
from astropy.io import fits, votable
from astropy.table import Table
from django.core.management import call_command

from catalog.models import ModelVersion, Prediction
from labeling.models import AnswerCount, ProjectSubject
from mlworker.models import PredictionChunk, TrainingRun
from mlworker.services import predictions as P
from mlworker.services.training import training_execute, training_start
from tests.mlworker.conftest import TINY

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(voted_survey):
    """A promoted CANDELS model with predictions for every galaxy of the voted survey."""
    run = training_start(task="morphology", variant="candels", trigger=TrainingRun.Trigger.CLI, config=TINY)
    training_execute(run_id=run.pk, worker="test")
    for chunk in PredictionChunk.objects.filter(status=PredictionChunk.Status.PENDING):
        P.prediction_chunk_execute(chunk_id=chunk.pk, worker="test")
    version = ModelVersion.objects.get()
    assert version.is_promoted and version.predictions_complete
    return version


def test_the_version_stores_its_held_out_comparison_with_baselines(scored):
    from mlworker.comparison import comparison, version_evaluation

    evaluation = version_evaluation(scored)
    n_test = scored.dataset.n_test
    assert evaluation["model"].shape[0] == evaluation["human"].shape[0] == n_test
    assert {"baseline_prior", "baseline_logistic"} <= set(evaluation)
    assert set(scored.metrics["baselines"]) == {"prior", "logistic"}
    assert -1 <= scored.metrics["uncertainty_spearman"]["per_answer"] <= 1
    report = comparison(scored, n_boot=200)
    assert report["n"] == n_test and set(report["by"]) == {"model", "prior", "logistic"}
    spheroid = report["by"]["model"]["fractions"]["main_class:spheroid"]["all"]
    human, model = evaluation["human"][:, 0], evaluation["model"][:, 0]
    assert spheroid["bias"] == pytest.approx(float((model - human).mean()), abs=1e-6)
    assert spheroid["bias_ci"][0] <= spheroid["bias"] <= spheroid["bias_ci"][1]
    confusion = report["by"]["model"]["confusion"]
    assert sum(map(sum, confusion["matrix"])) == n_test


def test_compare_command_prints_the_table(scored):
    out = io.StringIO()
    call_command("compare", "morphology", "--bootstrap", "100", stdout=out)
    text = out.getvalue()
    assert "held-out galaxies" in text and "class prior" in text and "logistic on image statistics" in text
    assert "main_class:spheroid" in text and "bias of the model by magnitude" in text
    out = io.StringIO()
    call_command("compare", "morphology", "--json", "--bootstrap", "50", stdout=out)
    assert json.loads(out.getvalue())["n"] == scored.dataset.n_test
    with pytest.raises(Exception, match="no version 9"):
        call_command("compare", "morphology", "--version", "9")


def test_comparison_page_plots_and_disagreements(scored, client):
    page = client.get("/ml/compare/morphology/candels/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Largest disagreements" in html and "logistic on image statistics" in html
    assert f"/ml/versions/{scored.pk}/predicted-vs-human.png" in html
    assert "/label/g-candels/?galaxy=" in html  # links into the voting UI
    for kind in ("predicted-vs-human", "bias-vs-magnitude"):
        png = client.get(f"/ml/versions/{scored.pk}/{kind}.png")
        assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert client.get(f"/ml/versions/{scored.pk}/nonsense.png").status_code == 404
    assert client.get("/ml/compare/morphology/gz2/").status_code == 404
    assert client.get("/ml/compare/morphology/candels/?version=x").status_code == 404


def test_disagreements_are_ranked_by_the_largest_difference(scored):
    from mlworker.comparison import disagreements

    rows = disagreements(version=scored, limit=100)
    assert rows and [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    top = rows[0]
    prediction = Prediction.objects.get(model_version=scored, galaxy=top["galaxy"])
    human = (
        AnswerCount.objects.filter(
            galaxy=top["galaxy"], answer__question__key="main_class", answer__key=top["answer"].split(":")[1]
        )
        .values_list("fraction", flat=True)
        .first()
        or 0.0  # nobody chose it: no count row
    )
    assert top["score"] == pytest.approx(abs(prediction.values["fractions"][top["answer"]] - human), abs=1e-6)
    held_out = disagreements(version=scored, limit=100, held_out_only=True)
    assert held_out and all(r["galaxy"].pk % 5 == 0 for r in held_out)


def test_galaxy_page_shows_human_fractions_beside_the_model(scored, client):
    galaxy_id = Prediction.objects.filter(model_version=scored).values_list("galaxy_id", flat=True).first()
    html = client.get(f"/galaxies/{galaxy_id}/").content.decode()
    assert 'id="fractions-candels"' in html and "main_class:spheroid" in html and str(scored) in html


def test_promoted_uncertainties_feed_the_active_strategy(scored):
    subjects = ProjectSubject.objects.filter(project__slug="g-candels")
    assert subjects.count() == 40 and not subjects.filter(active_score__isnull=True).exists()
    one = subjects.first()
    assert one.active_score == pytest.approx(
        Prediction.objects.get(model_version=scored, galaxy_id=one.galaxy_id).uncertainty
    )


def test_galaxy_catalog_api_json_and_streams(scored, client):
    body = client.get("/api/galaxies/?scheme=candels&voted=1&limit=5").json()
    assert body["count"] == 40 and len(body["results"]) == 5
    c = body["results"][0]["classification"]
    assert c["n_votes"] == 5 and 0 <= c["human"]["main_class:spheroid"] <= 1
    assert c["model"]["version"] == str(scored) and "main_class:disk" in c["model"]["fractions"]
    cone = client.get("/api/galaxies/", {"scheme": "candels", "ra": 53.1, "dec": -27.8, "radius": 5}).json()
    assert cone["count"] == 40
    csv = client.get("/api/galaxies/?scheme=candels&format=csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    table = Table.read(b"".join(csv.streaming_content).decode(), format="ascii.csv")
    assert len(table) == 40 and {"f_main_class_spheroid", "p_main_class_spheroid", "sigma_main_class_spheroid"} <= set(
        table.colnames
    )
    row = table[table["galaxy_id"] == body["results"][0]["id"]][0]
    assert row["p_main_class_disk"] == pytest.approx(c["model"]["fractions"]["main_class:disk"], abs=1e-4)
    fits_body = b"".join(client.get("/api/galaxies/?scheme=candels&format=fits").streaming_content)
    with fits.open(io.BytesIO(fits_body)) as hdul:
        data = hdul[1].data
        assert len(data) == 40 and np.all((data["f_main_class_disk"] >= 0) & (data["f_main_class_disk"] <= 1))
    vot = b"".join(client.get("/api/galaxies/?scheme=candels&format=votable").streaming_content)
    parsed = votable.parse_single_table(io.BytesIO(vot)).to_table()
    assert len(parsed) == 40 and parsed["ra"].unit == "deg"
    plain = b"".join(client.get("/api/galaxies/?format=csv").streaming_content).decode()
    assert plain.splitlines()[0].startswith("galaxy_id,survey,source_id,ra,dec")


@pytest.mark.parametrize(
    "query, message",
    [
        ("scheme=nope", "no scheme 'nope'"),
        ("scheme=candels&version=7", "no version 7"),
        ("version=1", "version needs a scheme"),
        ("scheme=candels&version=x", "version must be a version number"),
        ("voted=1", "voted needs a scheme"),
        ("ra=10&dec=0", "a cone search needs ra, dec and radius"),
    ],
)
def test_galaxy_catalog_api_rejects_bad_parameters(scored, client, query, message):
    response = client.get(f"/api/galaxies/?{query}")
    assert response.status_code == 400 and message in json.dumps(response.json())
