"""Retraining from the Django admin, in a real browser, with a real worker doing the work."""

import pytest
from django.db import connections

from catalog.models import ModelVersion
from mlworker.ml.morphology import MorphologyConfig
from mlworker.models import TrainingRun
from mlworker.services.training import training_execute, training_start
from tests.mlworker.conftest import TINY
from tests.mlworker.workers import Worker, flush_broker

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.slow,
]


def test_retrain_from_the_admin(live_server, browser, voted_survey, admin_user, isolated_files):
    first = training_start(task="morphology", variant="candels", trigger="cli", config=TINY)
    training_execute(run_id=first.pk)
    flush_broker()
    worker = Worker(isolated_files, env={"GALAXYLAB_PREDICTION_CHUNK": "20"})
    try:
        page = browser.new_page()
        page.goto(f"{live_server.url}/admin/login/?next=/admin/catalog/modelversion/")
        page.fill("#id_username", admin_user.username)
        page.fill("#id_password", "password")
        page.click("input[type=submit]")
        page.check("input[name=_selected_action]")
        page.select_option("select[name=action]", "retrain")
        page.click("button[name=index]")
        page.wait_for_url("**/admin/mlworker/trainingrun/*/change/")
        assert "queued" in page.text_content("ul.messagelist")
        # The live progress block updates itself until the run ends and the new version shows.
        page.wait_for_function(
            "document.querySelector('[data-field=status]').textContent === 'succeeded'", timeout=240_000
        )
        page.wait_for_function(
            "document.querySelector('[data-field=version]').textContent.includes('v2')", timeout=30_000
        )
        n = MorphologyConfig().epochs  # the admin starts the default configuration
        assert f"epoch {n}/{n}: loss" in page.text_content("[data-field=log]")
        page.wait_for_load_state("networkidle")
        page.close()
        connections.close_all()
    finally:
        worker.stop()
    run = TrainingRun.objects.exclude(pk=first.pk).get()
    assert run.trigger == "admin" and run.requested_by == admin_user and run.status == "succeeded"
    assert ModelVersion.objects.filter(number=2).exists()
