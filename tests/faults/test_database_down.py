"""The database unavailable for ten seconds while real workers run jobs: clear pages meanwhile, and
afterwards every generation final with a readable message, and new generations succeeding."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from jobs.chores import reconcile_generations
from tests.support import FIELDS, csrf_token, state, submit_ok, wait_for, wait_status
from tests.support.faults import for_seconds, postgres_unreachable, sqlite_unwritable
from webapp.extensions import db
from webapp.tables import FINAL_STATUSES, Generation, utcnow

OUTAGE = 10  # seconds
QUICK = {"steps": 12}


def _outage(app_env: dict[str, str], backend: str):
    if backend == "sqlite":
        return sqlite_unwritable(app_env["DATABASE_URL"].removeprefix("sqlite:///"))
    return postgres_unreachable(app_env["DATABASE_URL"])


def _rows(app) -> list[Generation]:
    with app.app_context():
        rows = list(db.session.scalars(select(Generation).order_by(Generation.created_at)))
        db.session.expunge_all()
        db.session.rollback()
        return rows


@pytest.mark.db
def test_database_down_for_ten_seconds_while_jobs_run(app, app_env, signed_in, workers, database_backend):
    client = signed_in
    app.config["MAX_ACTIVE_PER_USER"] = 10
    workers.start()
    first = submit_ok(client, steps=20)
    waiting = [submit_ok(client, **QUICK) for _ in range(3)]  # they start (and end) while the database is down
    wait_for(lambda: state(client, first)["status"] == "running", timeout=60, interval=0.05,
             message="the first generation to start")

    form = {**FIELDS, **{k: str(v) for k, v in QUICK.items()}, "csrf_token": csrf_token(client, "/")}
    with for_seconds(_outage(app_env, database_backend), OUTAGE) as outage:
        began = time.monotonic()
        response = client.post("/generations", data=form)  # the studio page itself may be down: the form was open
        page = response.get_data(as_text=True)
        assert response.status_code == 503, page[:500]
        assert "try again in a minute" in page and "Something broke" not in page
        poll = client.get(f"/api/generations/{first}")
        assert poll.status_code in {200, 503}  # SQLite still reads; PostgreSQL refuses everything
        if poll.status_code == 503:
            assert "try again in a minute" in poll.get_json()["error"]
        assert time.monotonic() - began < OUTAGE + 6  # the pages answered within the outage (or just after)
    assert not outage.is_alive()

    # The database is back: the queue drains, then the reconciliation settles what the workers could not mark.
    reconciled: dict[str, int] = {}

    def all_final() -> bool:
        with app.app_context():
            for outcome, count in reconcile_generations(now=utcnow() + timedelta(minutes=2)).items():
                reconciled[outcome] = reconciled.get(outcome, 0) + count
        return all(row.status in FINAL_STATUSES for row in _rows(app))

    wait_for(all_final, timeout=120, interval=1, message="every generation to be final")
    rows = _rows(app)
    assert {row.id for row in rows} == {first, *waiting}  # the refused submit left no row
    for row in rows:
        if row.status == "failed":
            assert row.error and row.error.endswith("Please try again.") and "Traceback" not in row.error
            assert row.finished_at is not None
    # Some job could not even mark its row running, nor failed: only the reconciliation ended it (a running row
    # whose job is over) or queued it again (a row still queued, whose job is over: the row is the truth).
    assert reconciled, [(r.status, r.error) for r in rows]

    later = submit_ok(client, **QUICK)
    assert wait_status(client, later, {"succeeded", "failed"}, timeout=60)["status"] == "succeeded"
