"""Owners' image actions hold under races: twenty identical requests at once leave one clear result."""
from __future__ import annotations

import pytest

from tests.support import fire, http_session
from webapp.extensions import db
from webapp.tables import Image, Report

ATTEMPTS = 20


@pytest.mark.db
def test_simultaneous_stars_and_unstars_are_idempotent(app, live_server, make_user, make_image):
    ada = make_user("ada@example.com")
    image_id = make_image(ada)
    session, token = http_session(live_server, "ada@example.com", ATTEMPTS)
    for wanted in ("1", "0", "1"):
        responses = fire(ATTEMPTS, lambda: session.post(f"{live_server}/images/{image_id}/star",
                                                        data={"csrf_token": token, "starred": wanted},  # noqa: B023
                                                        allow_redirects=False))
        assert [r.status_code for r in responses] == [303] * ATTEMPTS
        # A late duplicate (a double click, a retried request) asks for the same state and changes nothing.
        session.post(f"{live_server}/images/{image_id}/star", data={"csrf_token": token, "starred": wanted})
        with app.app_context():
            assert db.session.get(Image, image_id).is_starred is (wanted == "1")


@pytest.mark.db
def test_simultaneous_reports_by_one_person_file_one(app, live_server, make_user, make_image):
    ada = make_user("ada@example.com")
    make_user("bob@example.com")
    image_id = make_image(ada, is_public=True)
    session, token = http_session(live_server, "bob@example.com", ATTEMPTS)
    responses = fire(ATTEMPTS, lambda: session.post(f"{live_server}/images/{image_id}/report",
                                                    data={"csrf_token": token, "reason": "spam"}, allow_redirects=False))
    # All answered "sent" or "already reported" (the flash messages share one cookie, so they are not counted here).
    assert [r.status_code for r in responses] == [303] * ATTEMPTS
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Report)) == 1
