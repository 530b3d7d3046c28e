"""Accounts through the real forms: register, sign in/out, change password, and their failures."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from tests.support import Auth, body, csrf_token, links_in, post, run_chores, sent_mail
from webapp.auth.routes import LOGIN_FAILED
from webapp.extensions import db
from webapp.tables import User

pytestmark = pytest.mark.db


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_register_logout_login_change_password(client, auth, app, app_env):
    response = auth.sign_up(app, app_env, "Ada@Example.com", "correct horse")
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.email == "ada@example.com"
        assert user.password_hash.startswith("scrypt:")
        assert "correct horse" not in user.password_hash
    assert "Welcome, ada" in client.get("/").get_data(as_text=True)

    assert auth.logout().status_code == 302
    assert "Make pictures from words" in client.get("/").get_data(as_text=True)

    assert auth.login("ADA@example.com ", "correct horse").status_code == 302
    token = csrf_token(client, "/auth/account")
    response = client.post("/auth/password", data={
        "current": "correct horse", "password": "battery staple", "confirm": "battery staple", "csrf_token": token,
    })
    assert response.status_code == 302
    auth.logout()
    assert auth.login(password="correct horse").status_code == 400
    assert auth.login(password="battery staple").status_code == 302


def test_change_password_ends_other_sessions(app, auth, make_user):
    make_user("ada@example.com")
    other = app.test_client()
    from tests.support import Auth

    Auth(other).login()
    assert "Welcome, ada" in other.get("/").get_data(as_text=True)
    auth.login()
    token = csrf_token(auth.client, "/auth/account")
    auth.client.post("/auth/password", data={"current": "correct horse", "password": "battery staple",
                                             "confirm": "battery staple", "csrf_token": token})
    assert "Welcome, ada" in auth.client.get("/").get_data(as_text=True)
    assert "Welcome, ada" not in other.get("/").get_data(as_text=True)


def test_wrong_current_password_changes_nothing(app, auth, make_user, client):
    make_user("ada@example.com")
    auth.login()
    token = csrf_token(client, "/auth/account")
    response = client.post("/auth/password", data={"current": "nope nope", "password": "battery staple",
                                                   "confirm": "battery staple", "csrf_token": token})
    assert response.status_code == 400
    assert "not your current password" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User)).check_password("correct horse")


@pytest.mark.parametrize(("email", "password", "confirm", "message"), [
    ("", "correct horse", None, "Enter your email."),
    ("not-an-email", "correct horse", None, "Enter a valid email address."),
    ("ada@example.com", "short", None, "Use 8 to 128 characters."),
    ("ada@example.com", "x" * 129, None, "Use 8 to 128 characters."),
    ("ada@example.com", "aaaaaaaaaa", None, "too easy to guess"),
    ("ada@example.com", "iloveyou1", None, "too easy to guess"),
    ("ada@example.com", "correct horse", "correct house", "The passwords do not match."),
    ("a" * 250 + "@example.com", "correct horse", None, "Field cannot be longer than 254 characters."),
])
def test_register_validation(auth, app, email, password, confirm, message):
    response = auth.register(email, password, confirm)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert user_count(app) == 0


def test_long_password_accepted(auth):
    response = auth.register(password="p" * 60 + "assword!" + "z" * 60)
    assert response.status_code == 200 and "Check your email" in response.get_data(as_text=True)


def test_wrong_password_and_unknown_email_look_the_same(auth, make_user):
    make_user("ada@example.com")
    wrong = auth.login("ada@example.com", "wrong password")
    unknown = auth.login("nobody@example.com", "wrong password")
    assert wrong.status_code == unknown.status_code == 400
    assert LOGIN_FAILED in wrong.get_data(as_text=True)
    assert LOGIN_FAILED in unknown.get_data(as_text=True)


def test_post_without_csrf_token_is_rejected(client, app):
    response = client.post("/auth/register", data={"email": "ada@example.com", "password": "correct horse",
                                                   "confirm": "correct horse"})
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert user_count(app) == 0


def test_logout_needs_post_and_token(client, auth, make_user):
    make_user("ada@example.com")
    auth.login()
    assert client.get("/auth/logout").status_code == 405
    assert client.post("/auth/logout").status_code == 400
    assert "Welcome, ada" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)",
                                    "http:/evil.example"])
def test_open_redirect_refused(auth, make_user, target):
    make_user("ada@example.com")
    token = csrf_token(auth.client, "/auth/login")
    response = auth.client.post(f"/auth/login?next={target}", data={
        "email": "ada@example.com", "password": "correct horse", "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_local_next_followed(auth, make_user):
    make_user("ada@example.com")
    token = csrf_token(auth.client, "/auth/login?next=/auth/account")
    response = auth.client.post("/auth/login?next=/auth/account", data={
        "email": "ada@example.com", "password": "correct horse", "csrf_token": token})
    assert response.headers["Location"] == "/auth/account"


def test_login_required_redirects_with_next(client):
    response = client.get("/auth/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


def test_throttling_per_account_and_address(app, auth, make_user):
    app.config["LOGIN_LIMIT"] = "3 per 15 minutes"
    make_user("ada@example.com")
    for _ in range(3):
        assert auth.login(password="wrong password").status_code == 400
    blocked = auth.login(password="correct horse")
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    # Another account from the same address is still allowed (until the per-address limit).
    make_user("bob@example.com")
    assert auth.login("bob@example.com", "correct horse").status_code == 302


def test_a_stranger_cannot_lock_the_owner_out(app, make_user):
    make_user("ada@example.com")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    answers = [Auth(attacker).login(password=f"guess {n}").status_code for n in range(20)]
    assert answers[:10] == [400] * 10 and set(answers[10:]) == {429}
    blocked = Auth(attacker).login(password="guess 21")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0

    ada = app.test_client()
    ada.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert Auth(ada).login().status_code == 302
    assert "Welcome, ada" in ada.get("/").get_data(as_text=True)


def test_login_limits_grow_with_each_window(app):
    from limits import parse_many

    for name in ("LOGIN_LIMIT", "LOGIN_IP_LIMIT"):
        windows = parse_many(app.config[name])
        assert len(windows) >= 2, name
        assert [w.get_expiry() for w in windows] == sorted(w.get_expiry() for w in windows)
        assert [w.amount for w in windows] == sorted(w.amount for w in windows)


def test_throttling_per_ip(app, auth, make_user):
    app.config["LOGIN_IP_LIMIT"] = "4 per 15 minutes"
    for n in range(4):
        assert auth.login(f"user{n}@example.com", "wrong password").status_code == 400
    assert auth.login("user9@example.com", "wrong password").status_code == 429


def test_successful_logins_do_not_count(app, auth, make_user):
    app.config["LOGIN_LIMIT"] = "2 per 15 minutes"
    make_user("ada@example.com")
    for _ in range(4):
        assert auth.login().status_code == 302
        auth.logout()


def test_non_admin_gets_404_on_admin(client, auth, make_user):
    assert client.get("/admin/").status_code == 404
    make_user("ada@example.com")
    auth.login()
    assert client.get("/admin/").status_code == 404


def test_admin_sees_admin(client, auth, make_user):
    make_user("root@example.com", is_admin=True)
    auth.login("root@example.com")
    assert client.get("/admin/").status_code == 200
    assert 'href="/admin/"' in client.get("/").get_data(as_text=True)


def test_banned_user_cannot_sign_in(auth, make_user):
    make_user("ada@example.com", is_banned=True)
    response = auth.login()
    assert response.status_code == 400
    assert "suspended" in response.get_data(as_text=True)


def test_session_cookie_flags(auth, make_user):
    make_user("ada@example.com")
    response = auth.login(remember="y")
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("session="))
    remember = next(c for c in cookies if c.startswith("remember_token="))
    for cookie in (session, remember):
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie


def test_account_settings(client, auth, make_user, app):
    make_user("ada@example.com")
    auth.login()
    token = csrf_token(client, "/auth/account")
    response = client.post("/auth/account", data={"display_name": "Ada L", "csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User))
        assert (user.display_name, user.notify_by_email) == ("Ada L", False)
    response = client.post("/auth/account", data={"display_name": "x" * 65, "csrf_token": token})
    assert response.status_code == 400
    assert "under 64 characters" in response.get_data(as_text=True)


def test_unknown_email_costs_as_much_as_a_wrong_password(app, auth, make_user):
    app.config["LOGIN_LIMIT"] = app.config["LOGIN_IP_LIMIT"] = "1000 per minute"
    app.config["PASSWORD_METHOD"] = "scrypt"  # production's cost (the tests' cheap one is lost in the noise)
    make_user("ada@example.com")
    auth.login("nobody@example.com", "warm up")  # the first check builds the dummy hash
    wrong, unknown = [], []
    for _ in range(7):  # interleaved; the fastest of each: other load (a parallel test) only ever adds time
        for email, times in (("ada@example.com", wrong), ("nobody@example.com", unknown)):
            start = time.perf_counter()
            assert auth.login(email, "wrong password").status_code == 400
            times.append(time.perf_counter() - start)
    ratio = min(unknown) / min(wrong)
    assert 0.6 < ratio < 1.6, (ratio, wrong, unknown)


def test_password_change_emails_the_owner(app, app_env, auth, make_user):
    make_user("ada@example.com")
    auth.login()
    post(auth.client, "/auth/password", current="correct horse", password="battery staple", confirm="battery staple")
    run_chores(app)
    [message] = sent_mail(app_env)
    assert message["To"] == "ada@example.com" and message["Subject"] == "Your Easel password was changed"
    assert links_in(body(message), "/auth/forgot")


def test_a_new_browser_emails_the_owner(app, app_env, make_user):
    make_user("ada@example.com")
    laptop, phone = app.test_client(), app.test_client()
    assert Auth(laptop).login().status_code == 302  # the account's first sign-in: nothing to report
    run_chores(app)
    assert sent_mail(app_env) == []
    phone.environ_base["HTTP_USER_AGENT"] = "PhoneBrowser/1.0"
    assert Auth(phone).login().status_code == 302
    Auth(phone).logout()
    Auth(phone).login()  # known now
    Auth(laptop).logout()
    Auth(laptop).login()  # known from the first time
    run_chores(app)
    [message] = sent_mail(app_env)
    assert message["Subject"] == "New sign-in to your Easel account"
    assert "PhoneBrowser/1.0" in body(message)
