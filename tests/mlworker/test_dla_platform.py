"""The DLA finder on the platform: trained on mock sightlines by the training service,
registered, predicting absorbers for every ingested sightline, and its catalog evaluated
against the mock's truth table by ``manage.py evaluate dla``."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from catalog.errors import ApplicationError
from catalog.models import ModelVersion, Prediction, QuasarSpectrum, Survey
from mlworker.models import PredictionChunk, TrainingRun
from mlworker.services import predictions as P
from mlworker.services.training import training_execute, training_start

pytestmark = pytest.mark.django_db
TINY_DLA = {"train_sightlines": 50, "test_sightlines": 12, "epochs": 1, "windows_per_epoch": 1024, "batch_size": 128}


@pytest.fixture
def dla_version(mock_spectra, isolated_files, settings):
    settings.GALAXYLAB_PREDICTION_CHUNK = 10
    call_command("ingest_spectra", str(mock_spectra / "spectra"), survey="sdss", verbosity=0)
    run = training_start(task="dla", trigger=TrainingRun.Trigger.CLI, config=TINY_DLA)
    assert run.variant == "mock"
    assert training_execute(run_id=run.pk, worker="test") == "succeeded"
    for chunk in PredictionChunk.objects.filter(status=PredictionChunk.Status.PENDING):
        P.prediction_chunk_execute(chunk_id=chunk.pk, worker="test")
    version = ModelVersion.objects.get(task="dla")
    assert version.is_promoted and version.predictions_complete
    return version


def test_a_training_run_past_its_time_limit_runs_fewer_epochs_and_says_so(mock_spectra, isolated_files):
    call_command("ingest_spectra", str(mock_spectra / "spectra"), survey="sdss", verbosity=0)
    # making the dataset alone takes longer than a second: one epoch of the three is left
    config = TINY_DLA | {"epochs": 3, "time_limit_s": 1.0}
    run = training_start(task="dla", trigger=TrainingRun.Trigger.CLI, config=config)
    assert training_execute(run_id=run.pk, worker="test") == "succeeded"
    run.refresh_from_db()
    assert run.n_epochs == 1 and "time limit 1 s: 1 of 3 epochs ran (a training step took" in run.log
    m = run.model_version.metrics
    assert m["epochs_run"] == 1 and m["epochs_limited_by_time"] and m["probe_step_seconds"] > 0


def test_trained_version_stores_held_out_metrics_and_predicts_every_sightline(dla_version):
    m = dla_version.metrics
    assert dla_version.primary_metric == "dla_score" and dla_version.higher_is_better
    assert m["n_test_sightlines"] == 12 and {"completeness_dla", "false_dla_fraction", "sigma_z"} <= set(m)
    assert dla_version.dataset.n_test == 12 and dla_version.evaluation.name.endswith(".eval.npz")
    assert Prediction.objects.filter(model_version=dla_version).count() == QuasarSpectrum.objects.count() == 24
    values = Prediction.objects.filter(model_version=dla_version).first().values
    assert set(values) == {"absorbers", "z_qso", "snr"}
    for absorber in (a for p in Prediction.objects.all() for a in p.values["absorbers"]):
        assert absorber["type"] in ("dla", "subdla") and 0 <= absorber["confidence"] <= 1
        assert absorber["log_nhi_err"] >= 0


def test_evaluate_command_against_the_truth_table(dla_version, mock_spectra):
    out = io.StringIO()
    call_command("evaluate", "dla", "--truth", str(mock_spectra / "absorbers_truth.csv"), stdout=out)
    text = out.getvalue()
    assert "24 sightlines scanned" in text and "completeness as DLA (log N >= 20.3)" in text
    assert "snr 0-6" in text and "sigma(log N)" in text and "z_qso 3.5-4" in text
    assert "By log N(HI)" in text and "log N 20.3-20.45" in text and "predicted DLAs" in text
    out = io.StringIO()
    call_command("evaluate", "dla", "--truth", str(mock_spectra / "absorbers_truth.csv"), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["n_sightlines"] == 24 and report["overall"]["n_true_dla"] > 0
    by_z = report["by_z_qso"]
    assert list(by_z) == ["z_qso 0-3", "z_qso 3-3.5", "z_qso 3.5-4", "z_qso >=4"]
    assert sum(b["n_sightlines"] for b in by_z.values()) == 24  # every scanned sightline in one bin
    assert sum(b["n_true_dla"] for b in by_z.values()) == report["overall"]["n_true_dla"]
    by_n = report["by_log_nhi"]  # every true and every predicted DLA in one column-density bin
    assert sum(b["n_true_dla"] for b in by_n.values()) == report["overall"]["n_true_dla"]
    assert sum(b["n_predicted_dla"] for b in by_n.values()) == report["overall"]["n_predicted_dla"]


def test_evaluate_within_a_range_of_quasar_redshifts(dla_version, mock_spectra):
    truth = str(mock_spectra / "absorbers_truth.csv")
    in_range = QuasarSpectrum.objects.filter(z_qso__gte=2.2, z_qso__lt=3.3).count()
    assert 0 < in_range < 24
    out = io.StringIO()
    call_command("evaluate", "dla", "--truth", truth, "--z-qso", "2.2", "3.3", stdout=out)
    assert f"{in_range} sightlines scanned with 2.2 <= z_qso < 3.3" in out.getvalue()
    out = io.StringIO()
    call_command("evaluate", "dla", "--truth", truth, "--z-qso", "2.2", "3.3", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["n_sightlines"] == in_range and report["z_qso_range"] == [2.2, 3.3]
    everything = json.loads(_evaluate_json(truth))
    assert report["overall"]["n_true_dla"] <= everything["overall"]["n_true_dla"]
    assert sum(b["n_sightlines"] for b in report["by_z_qso"].values()) == in_range
    with pytest.raises(CommandError, match=r"lower end \(3\.3\) must be below the upper \(2\.2\)"):
        call_command("evaluate", "dla", "--truth", truth, "--z-qso", "3.3", "2.2")
    with pytest.raises(CommandError, match="scanned no sightline with 6 <= z_qso < 7"):
        call_command("evaluate", "dla", "--truth", truth, "--z-qso", "6", "7")


def _evaluate_json(truth: str) -> str:
    out = io.StringIO()
    call_command("evaluate", "dla", "--truth", truth, "--json", stdout=out)
    return out.getvalue()


def test_evaluate_refuses_bad_truth_tables(dla_version, tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("plate,mjd,z\n1,2,3\n")
    with pytest.raises(CommandError, match="lacks the columns"):
        call_command("evaluate", "dla", "--truth", str(wrong))
    with pytest.raises(CommandError, match="no truth table"):
        call_command("evaluate", "dla", "--truth", str(tmp_path / "missing.csv"))
    other = tmp_path / "other.csv"
    other.write_text("plate,mjd,fiber,z_abs,log_nhi\n1,2,3,2.5,20.5\n")
    with pytest.raises(CommandError, match="no sightline of the truth table was scanned"):
        call_command("evaluate", "dla", "--truth", str(other))
    with pytest.raises(CommandError, match="no version 7"):
        call_command("evaluate", "dla", "--truth", str(other), "--version", "7")


def test_dla_versions_apply_to_spectroscopic_surveys_only(dla_version, mock_galaxies):
    call_command("ingest_galaxies", str(mock_galaxies / "catalog.csv"), survey="img", verbosity=0)
    imaging = Survey.objects.get(name="img")
    with pytest.raises(ApplicationError, match="not a spectroscopic one"):
        P.prediction_run_start(version=dla_version, survey=imaging, force=True)
    assert (
        P.prediction_run_start(version=dla_version, survey=Survey.objects.get(name="sdss"), only_missing=True) is None
    )


def test_unknown_dla_options_are_refused():
    with pytest.raises(ApplicationError, match="unknown training options"):
        training_start(task="dla", trigger=TrainingRun.Trigger.CLI, config={"layers": 3})


def test_publishing_freezes_a_release_that_retraining_never_changes(dla_version, client):
    from catalog.models import DLAAbsorber, DLARelease

    out = io.StringIO()
    call_command("publish_dla", "DR1", "--description", "first", stdout=out)
    assert "published DR1" in out.getvalue()
    dr1 = DLARelease.objects.get(name="DR1")
    predicted = sum(len(p.values["absorbers"]) for p in Prediction.objects.filter(model_version=dla_version))
    assert dr1.n_absorbers == predicted == DLAAbsorber.objects.filter(release=dr1).count()
    assert dr1.n_sightlines == 24 and dr1.model_version == dla_version
    frozen = list(DLAAbsorber.objects.filter(release=dr1).order_by("identifier").values_list("identifier", "z_abs"))
    with pytest.raises(CommandError, match="exists and is frozen"):
        call_command("publish_dla", "DR1")
    with pytest.raises(CommandError, match="release name"):
        call_command("publish_dla", "1-bad name")
    # retrain: a new version (promoted or not) and its predictions leave DR1 as it was
    run = training_start(task="dla", trigger=TrainingRun.Trigger.CLI, config={**TINY_DLA, "seed": 1})
    training_execute(run_id=run.pk, worker="test")
    for chunk in PredictionChunk.objects.filter(status=PredictionChunk.Status.PENDING):
        P.prediction_chunk_execute(chunk_id=chunk.pk, worker="test")
    second = ModelVersion.objects.get(task="dla", number=2)
    call_command("publish_dla", "DR2", "--version", "2", stdout=io.StringIO())
    assert DLARelease.objects.get(name="DR2").model_version == second
    again = list(DLAAbsorber.objects.filter(release=dr1).order_by("identifier").values_list("identifier", "z_abs"))
    assert again == frozen
    if frozen:
        identifier = frozen[0][0]
        assert identifier.startswith("DR1-") and client.get(f"/api/dla/{identifier}/").json()["release"] == "DR1"
    latest = client.get("/api/dla/?page_size=1000").json()["results"]
    assert all(r["release"] == "DR2" for r in latest)


def test_sightline_page_shows_the_absorbers_and_their_voigt_profiles(dla_version, client):
    with_absorbers = next(
        (p for p in Prediction.objects.filter(model_version=dla_version) if p.values["absorbers"]), None
    )
    spectrum = (with_absorbers or Prediction.objects.filter(model_version=dla_version).first()).spectrum
    page = client.get(f"/spectra/{spectrum.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "Damped Lyman-alpha absorbers" in html and str(dla_version) in html
    assert f"/spectra/{spectrum.pk}/dla.png" in html
    if with_absorbers:
        assert f"{with_absorbers.values['absorbers'][0]['z_abs']:.4f}" in html
    png = client.get(f"/spectra/{spectrum.pk}/dla.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert client.get("/spectra/999999/dla.png").status_code == 404


def test_sightlines_marked_dla_free_train_with_inserted_dlas(mock_spectra, isolated_files, tmp_path):
    from catalog.models import DatasetExport
    from catalog.services.files import pack_root
    from mlworker.ml.dla import DLAData

    call_command("ingest_spectra", str(mock_spectra / "spectra"), survey="sdss", verbosity=0)
    chosen = list(QuasarSpectrum.objects.order_by("pk").values_list("plate", "mjd", "fiber")[:3])
    table = tmp_path / "free.csv"
    table.write_text("plate,mjd,fiber\n" + "".join(f"{p},{m},{f}\n" for p, m, f in chosen))
    out = io.StringIO()
    call_command("mark_dla_free", "sdss", "--table", str(table), stdout=out)
    assert "3 sightlines of sdss marked free of DLAs" in out.getvalue()
    assert QuasarSpectrum.objects.filter(dla_free=True).count() == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("plate,mjd,fiber\n1,2,3\n")
    with pytest.raises(CommandError, match="1 sightlines are not in survey sdss: 1-2-3"):
        call_command("mark_dla_free", "sdss", "--table", str(bad))
    with pytest.raises(CommandError, match="no spectroscopic survey"):
        call_command("mark_dla_free", "nope")
    assert QuasarSpectrum.objects.filter(dla_free=True).count() == 3
    run = training_start(task="dla", trigger=TrainingRun.Trigger.CLI, config=TINY_DLA)
    assert training_execute(run_id=run.pk, worker="test") == "succeeded"
    export = DatasetExport.objects.get(task="dla")
    assert export.description["n_inserted_sightlines"] == 3
    data = DLAData.load(pack_root() / export.path)
    inserted = [i for i, s in enumerate(data.sightline_ids) if "+" in str(s)]
    assert len(inserted) == 6 and not data.is_test[inserted].any() and not data.is_validation[inserted].any()
    assert str(data.sightline_ids[inserted[0]]) == "-".join(map(str, chosen[0])) + "+1"


def test_inserted_absorbers_keep_the_noise_and_darken_the_trough():
    import numpy as np

    from mlworker.synthetic.spectra import SpectraMockConfig, SpectraSimulator, insert_absorbers

    sim = SpectraSimulator(
        SpectraMockConfig(forest=False, lyman_limit_systems=False, igm_continuum=False, noise=False, masks=False)
    )
    clean = sim.simulate(0, 1, z_qso=3.5, absorbers=[])
    ivar = np.full(clean.flux.size, 4.0, np.float32)
    rng = np.random.default_rng(0)
    inserted, absorbers = insert_absorbers(sim.cfg.start_index, clean.flux, ivar, 3.5, rng, boost=30.0)
    strong = [a for a in absorbers if a.log_nhi >= 20.5]
    assert strong
    wave = 10**sim.loglam
    core = np.abs(wave - 1215.67 * (1 + strong[0].z_abs)) < 6.0
    assert np.mean(inserted[core]) == pytest.approx(0.0, abs=0.3)  # black trough, noise of sigma 0.5
    assert np.std(inserted[core]) == pytest.approx(0.5, rel=0.35)
    untouched = np.ones(clean.flux.size, dtype=bool)
    for a in absorbers:
        untouched &= np.abs(wave / (1 + a.z_abs) - 1215.67) > 60
        untouched &= wave / (1 + a.z_abs) > 1100
    deviation = np.abs(inserted[untouched] / clean.flux[untouched] - 1)
    assert np.median(deviation) < 0.02 and np.mean(deviation < 0.05) > 0.95  # away from the lines: as it was
