"""Helpers for the moderation tests: signed-in clients and CSRF-carrying POSTs."""
from __future__ import annotations

from datetime import timedelta

from webapp.extensions import db
from webapp.models import AuditLog, Generation, GenerationStatus, Report, utcnow

from ..conftest import Auth, csrf_token


def sign_in(app, email: str, password: str = "correct horse"):
    """A fresh test client signed in as ``email`` through the real form."""
    client = app.test_client()
    response = Auth(client).login(email, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def post(client, path: str, token_page: str = "/auth/account", **data):
    """POST ``data`` with a CSRF token read from ``token_page`` (any page with a form)."""
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **data})


def audit_entries(app, action: str | None = None) -> list[tuple[str, str, str, int | None]]:
    """(action, target_type, target_id, admin_id) of every audit entry, oldest first."""
    with app.app_context():
        query = db.select(AuditLog).order_by(AuditLog.id)
        if action:
            query = query.where(AuditLog.action == action)
        return [(e.action, e.target_type, e.target_id, e.admin_id) for e in db.session.scalars(query)]


def add_report(app, image_id: str, reporter_id: int, reason: str = "spam", details: str = "") -> int:
    """Insert an open report directly."""
    with app.app_context():
        report = Report(image_id=image_id, reporter_id=reporter_id, reason=reason, details=details)
        db.session.add(report)
        db.session.commit()
        return report.id


def add_generation(app, user_id: int, status: GenerationStatus = GenerationStatus.QUEUED, age: timedelta = timedelta(),
                   generation_id: str | None = None) -> str:
    """Insert a generation row (no job) ``age`` ago."""
    with app.app_context():
        generation = Generation(user_id=user_id, status=status, prompt="a blue square", model="easel-tiny", width=64,
                                height=64, steps=4, guidance=5.0, seed=7, num_images=1,
                                created_at=utcnow() - age)
        if generation_id:
            generation.id = generation_id
        db.session.add(generation)
        db.session.commit()
        return generation.id
