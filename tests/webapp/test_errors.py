"""Bad requests get a clear 4xx page and write nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support import csrf_token
from webapp.extensions import db
from webapp.tables import User


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_non_utf8_form_is_refused(client, app):
    token = csrf_token(client, "/auth/register")
    body = b"email=ada%FF%FE@example.com&password=correct+horse&confirm=correct+horse&csrf_token=" + token.encode()
    response = client.post("/auth/register", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "not valid UTF-8" in response.get_data(as_text=True)
    assert user_count(app) == 0


def test_nul_byte_is_refused(client, app):
    token = csrf_token(client, "/auth/register")
    response = client.post("/auth/register", data={"email": "ada@example.com", "password": "correct\x00horse",
                                                   "confirm": "correct\x00horse", "csrf_token": token})
    assert response.status_code == 400
    assert user_count(app) == 0


def test_missing_fields(client, app):
    token = csrf_token(client, "/auth/register")
    response = client.post("/auth/register", data={"csrf_token": token})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Enter your email." in text and "Choose a password." in text
    assert user_count(app) == 0


def test_body_too_large(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    token = csrf_token(client, "/auth/register")
    response = client.post("/auth/register", data={"email": "a@example.com", "password": "x" * 4096,
                                                   "confirm": "x", "csrf_token": token})
    assert response.status_code == 413
    assert "larger than this site accepts" in response.get_data(as_text=True)
    assert user_count(app) == 0


@pytest.mark.parametrize(("path", "code"), [("/no/such/page", 404), ("/api/nothing", 404)])
def test_error_pages(client, path, code):
    response = client.get(path)
    assert response.status_code == code
    if path.startswith("/api/"):
        assert response.get_json()["status"] == code
    else:
        assert "Back to the studio" in response.get_data(as_text=True)


def test_security_headers(client):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_500_page(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/boom")
    assert response.status_code == 500
    assert "An error on our side" in response.get_data(as_text=True)
    assert "kaput" not in response.get_data(as_text=True)


def test_database_unwritable_gives_a_try_again_page(app, signed_in, app_env):
    from tests.support import submit
    from tests.support.faults import sqlite_unwritable
    from webapp.tables import Generation

    with sqlite_unwritable(app_env["DATABASE_URL"].removeprefix("sqlite:///")):
        response = submit(signed_in)
        with app.app_context():
            db.engine.dispose()  # the next request opens a connection while the files are read-only
        assert signed_in.get("/").status_code == 200  # reading still works
    page = response.get_data(as_text=True)
    assert response.status_code == 503, page[:500]
    assert "try again in a minute" in page and "Something broke" not in page
    assert response.headers["Retry-After"] == "60"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Generation)) == 0  # nothing half-written
    assert submit(signed_in).status_code == 303  # and the next one, with the database back, works


def test_database_down_answers_json_on_the_api(app, client):
    from sqlalchemy.exc import OperationalError

    @app.get("/api/db-down")
    def db_down():
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    response = client.get("/api/db-down")
    assert response.status_code == 503
    assert response.get_json()["error"].endswith("Please try again in a minute.")
