"""Limits hold under races: many submits at once by one person, through a live HTTP server."""
from __future__ import annotations

import html

import pytest

from tests.support import FIELDS, fire, http_session, queued_jobs

ATTEMPTS = 20


def generation_rows(app) -> list[tuple[str, str]]:
    from webapp.extensions import db
    from webapp.tables import Generation

    with app.app_context():
        return [(g.status, g.user_id) for g in db.session.scalars(db.select(Generation))]


@pytest.mark.db
@pytest.mark.parametrize("setting, limit, message", [
    ({"MAX_QUEUED_PER_USER": 2}, 2, "waiting in the queue (the limit is 2)"),
    ({"DAILY_IMAGE_QUOTA": 3, "MAX_QUEUED_PER_USER": 100}, 3, "today's limit of 3 images"),
])
def test_twenty_simultaneous_submits_accept_exactly_the_limit(app, live_server, make_user, redis_url, setting, limit,
                                                              message):
    app.config.update(setting)
    make_user("ada@example.com")
    session, token = http_session(live_server, "ada@example.com", ATTEMPTS)
    responses = fire(ATTEMPTS, lambda: session.post(f"{live_server}/generations", data={**FIELDS, "csrf_token": token},
                                                    allow_redirects=False))
    codes = sorted(r.status_code for r in responses)
    assert codes == [303] * limit + [429] * (ATTEMPTS - limit), codes
    assert all(message in html.unescape(r.text) for r in responses if r.status_code == 429)
    rows = generation_rows(app)
    assert len(rows) == limit and all(status == "queued" for status, _ in rows), rows
    assert queued_jobs(redis_url) == limit
