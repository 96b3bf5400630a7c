"""A real browser (Playwright driving Debian's chromium) votes with the keyboard."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from labeling.models import AnswerCount, GalaxyVoteTotal, Skip, Vote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]


def test_keyboard_voting_skip_and_undo(live_server, browser, candels):
    get_user_model().objects.create_user(username="expert", password="a-long-test-password")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/accounts/login/?next=/label/{candels.slug}/")
    page.fill("#id_username", "expert")
    page.fill("#id_password", "a-long-test-password")
    page.click("#login-submit")
    page.wait_for_selector("#source-id[data-galaxy]")
    # Every answer shows its key; the page fits a laptop screen without scrolling.
    assert page.locator("#question-area kbd").count() == 28
    assert page.evaluate("document.documentElement.scrollHeight") <= 768

    shown = []

    def current() -> int:
        return int(page.get_attribute("#source-id", "data-galaxy"))

    def wait_for_change(previous: int) -> int:
        page.wait_for_function(f"document.querySelector('#source-id').dataset.galaxy != '{previous}'")
        return current()

    galaxy = current()
    for keys in (["1"], ["2", "3", "q"], ["4", "h"], ["2", "f", "b"]):
        shown.append(galaxy)
        for key in keys:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        galaxy = wait_for_change(galaxy)
    shown.append(galaxy)
    page.keyboard.press("/")  # skip
    galaxy = wait_for_change(galaxy)
    shown.append(galaxy)
    page.keyboard.press("Backspace")  # undo the last vote: its galaxy comes back
    galaxy = wait_for_change(galaxy)
    assert galaxy == shown[3]
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    galaxy = wait_for_change(galaxy)
    assert "vote recorded" in page.text_content("#status")
    assert page.text_content("#session-count") == "4"

    votes = list(Vote.objects.filter(classifier__username="expert").order_by("created_at"))
    assert [v.galaxy_id for v in votes] == shown[:3] + [shown[3]]
    assert {a.key for a in votes[-1].answers.all()} == {
        "unclassifiable",
        "none",
        "c0_p0",
    }  # the re-vote, defaults filled
    assert {a.key for a in votes[1].answers.all()} >= {"disk", "irregular", "merger"}
    assert Skip.objects.filter(classifier__username="expert").get().galaxy_id == shown[4]
    # The galaxy the undo displaced comes back on screen; voted or skipped ones never do.
    assert galaxy == shown[5]
    assert len(set(shown)) == len(shown)
    assert GalaxyVoteTotal.objects.get(galaxy_id=shown[3]).n_votes == 1
    assert AnswerCount.objects.get(galaxy_id=shown[3], answer__key="disk").count == 0
    page.wait_for_load_state("networkidle")  # no request still running when the test database goes
    page.close()
    # Inside Playwright's event loop the ORM opened connections of its own: close them too.
    connections.close_all()
