"""Sessions the server can end: sign-out kills copied cookies, "sign out everywhere", rotation, lifetimes."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import TimestampSigner
from redis import Redis

from tests.support import Auth, csrf_token, free_port, post
from webapp.auth.session import SESSIONS_DOWN

pytestmark = pytest.mark.db

WELCOME = "Welcome, ada"


def signed_in(client) -> bool:
    return WELCOME in client.get("/").get_data(as_text=True)


def copy_cookie(source, name: str, target) -> None:
    target.set_cookie(name, source.get_cookie(name).value)


def test_a_copied_session_cookie_stops_working_at_sign_out(app, auth, make_user):
    make_user("ada@example.com")
    auth.login()
    thief = app.test_client()
    copy_cookie(auth.client, "session", thief)
    assert signed_in(thief)
    auth.logout()
    assert not signed_in(auth.client)
    assert not signed_in(thief)
    assert thief.get("/auth/account").status_code == 302


def test_a_copied_remember_cookie_stops_working_at_sign_out(app, auth, make_user):
    make_user("ada@example.com")
    auth.login(remember="y")
    thief = app.test_client()
    copy_cookie(auth.client, "remember_token", thief)  # no session cookie: the remember-me cookie alone
    assert signed_in(thief)
    auth.logout()
    replay = app.test_client()
    replay.set_cookie("remember_token", thief.get_cookie("remember_token").value)
    assert not signed_in(replay)


def test_sign_out_ends_this_session_only(app, auth, make_user):
    make_user("ada@example.com")
    auth.login()
    phone = app.test_client()
    Auth(phone).login()
    auth.logout()
    assert not signed_in(auth.client)
    assert signed_in(phone)


def test_sign_out_everywhere(app, auth, make_user):
    make_user("ada@example.com")
    auth.login()
    phone = app.test_client()
    Auth(phone).login(remember="y")
    page = auth.client.get("/auth/account").get_data(as_text=True)
    assert "Sign out everywhere" in page
    assert auth.client.post("/auth/logout-everywhere").status_code == 400  # needs the CSRF token
    assert signed_in(phone)
    response = post(auth.client, "/auth/logout-everywhere")
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    assert not signed_in(auth.client)
    assert not signed_in(phone)
    replay = app.test_client()
    copy_cookie(phone, "remember_token", replay)
    assert not signed_in(replay)
    assert Auth(phone).login().status_code == 302  # signing in again works
    assert signed_in(phone)


def test_sign_in_and_out_rotate_the_session_and_csrf_token(app, auth, make_user):
    make_user("ada@example.com")
    before = csrf_token(auth.client, "/auth/login")
    with auth.client.session_transaction() as session:
        session["planted"] = "by someone else"
        raw_before = session["csrf_token"]
    auth.login()
    with auth.client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("csrf_token") != raw_before
    # A form token from before sign-in is refused afterwards.
    stale = auth.client.post("/auth/account", data={"display_name": "Ada", "csrf_token": before})
    assert stale.status_code == 400 and "expired" in stale.get_data(as_text=True)
    signed_in_token = csrf_token(auth.client, "/auth/account")
    auth.client.post("/auth/logout", data={"csrf_token": signed_in_token})
    with auth.client.session_transaction() as session:
        assert "_user_id" not in session
    assert auth.client.post("/auth/logout", data={"csrf_token": signed_in_token}).status_code == 400


def test_csrf_tokens_expire_after_a_few_hours(app, auth, make_user, monkeypatch):
    make_user("ada@example.com")
    auth.login()
    old = csrf_token(auth.client, "/auth/account")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) + 5 * 3600)  # 5 h later
    response = auth.client.post("/auth/account", data={"display_name": "Ada", "csrf_token": old})
    monkeypatch.undo()
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    fresh = csrf_token(auth.client, "/auth/account")
    assert auth.client.post("/auth/account", data={"display_name": "Ada", "csrf_token": fresh}).status_code == 302


def test_remember_me_lasts_thirty_days(app, auth, make_user):
    assert app.config["REMEMBER_DAYS"] == 30
    make_user("ada@example.com")
    auth.login(remember="y")
    expires = auth.client.get_cookie("remember_token").expires
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(hours=1)


def stop_redis(app) -> None:
    """Point the app's Redis client at a port nobody listens on."""
    app.extensions["easel"].__dict__["redis"] = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5, socket_timeout=0.5)


def test_without_redis_signed_in_pages_fall_back_to_the_session_version(app, auth, make_user):
    make_user("ada@example.com")
    auth.login()
    phone = app.test_client()
    Auth(phone).login()
    stop_redis(app)
    for path in ("/", "/auth/account", "/gallery"):
        assert auth.client.get(path).status_code == 200, path
    assert signed_in(auth.client) and signed_in(phone)
    # Signing out cannot forget one session now, so it ends them all rather than none.
    response = auth.logout()
    assert response.status_code == 302
    assert "on every device" in auth.client.get("/").get_data(as_text=True)
    assert not signed_in(phone)
    # Signing in needs the session store: a clear "try again", not a crash.
    blocked = Auth(app.test_client()).login()
    assert blocked.status_code == 503 and SESSIONS_DOWN in blocked.get_data(as_text=True)
