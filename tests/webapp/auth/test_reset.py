"""Forgot password: the same answer for every address, a single-use hour-long link, sessions end."""
from __future__ import annotations

import re

import pytest

from tests.support import Auth, body, csrf_token, links_in, result_token, run_chores, sent_mail, token_for
from webapp.extensions import db
from webapp.links import tokens as links
from webapp.tables import User


def ask_for_link(client, email: str):
    return client.post("/auth/forgot", data={"email": email, "csrf_token": csrf_token(client, "/auth/forgot")})


def reset_link(app_env) -> str:
    [message] = sent_mail(app_env)
    [link] = links_in(body(message), "/auth/reset/")
    assert links_in(body(message, "html"), "/auth/reset/") == [link]
    return link.removeprefix("http://127.0.0.1:5000")


def set_password(client, path: str, password: str = "new password 9"):
    return client.post(path, data={"password": password, "confirm": password,
                                   "csrf_token": csrf_token(client, "/auth/forgot")})


def test_same_answer_whether_or_not_the_account_exists(app, app_env, client, make_user):
    make_user("ada@example.com")
    known = ask_for_link(client, "Ada@Example.com ")
    unknown = ask_for_link(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    strip = lambda r: re.sub(r'value="[^"]+"|content="[^"]+"', "", r.get_data(as_text=True))  # noqa: E731
    assert strip(known).replace("ada@example.com", "X") == strip(unknown).replace("nobody@example.com", "X")
    assert "Check your email" in known.get_data(as_text=True)
    run_chores(app)
    [message] = sent_mail(app_env)  # only the real account got one
    assert message["To"] == "ada@example.com" and message["Subject"] == "Reset your Easel password"
    assert "List-Unsubscribe" not in message  # a reset is not a notification


@pytest.mark.db
def test_reset_sets_the_password_and_ends_every_session(app, app_env, client, make_user):
    make_user("ada@example.com", password="old password 1")
    laptop = app.test_client()
    assert Auth(laptop).login(password="old password 1").status_code == 302
    assert laptop.get("/auth/account").status_code == 200

    ask_for_link(client, "ada@example.com")
    run_chores(app)
    path = reset_link(app_env)
    page = client.get(path)
    assert page.status_code == 200 and "Set a new password" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    done = set_password(client, path)
    assert done.status_code == 303 and done.headers["Location"] == "/auth/login"

    assert laptop.get("/auth/account").status_code == 302  # the other session ended
    auth = Auth(client)
    assert auth.login(password="old password 1").status_code == 400
    assert auth.login(password="new password 9").status_code == 302
    auth.logout()

    # Single use: the same link is dead now, and changes nothing.
    again = client.get(path)
    assert again.status_code == 404 and "This reset link does not work" in again.get_data(as_text=True)
    assert set_password(client, path, "third password 3").status_code == 404
    assert auth.login(password="new password 9").status_code == 302

    run_chores(app)  # the owner is told the password changed
    assert [m["Subject"] for m in sent_mail(app_env)].count("Your Easel password was changed") == 1


def test_reset_form_checks_the_new_password(app, app_env, client, make_user):
    make_user("ada@example.com")
    ask_for_link(client, "ada@example.com")
    run_chores(app)
    path = reset_link(app_env)
    response = client.post(path, data={"password": "aaaaaaaaaa", "confirm": "aaaaaaaaaa",
                                       "csrf_token": csrf_token(client, path)})
    assert response.status_code == 400 and "too easy to guess" in response.get_data(as_text=True)
    mismatch = client.post(path, data={"password": "new password 9", "confirm": "other",
                                       "csrf_token": csrf_token(client, path)})
    assert mismatch.status_code == 400 and "do not match" in mismatch.get_data(as_text=True)
    assert client.post(path, data={"password": "new password 9", "confirm": "new password 9"}).status_code == 400


@pytest.mark.parametrize("case", ["expired", "tampered", "wrong purpose", "unknown user", "password changed"])
def test_bad_reset_links_change_nothing(app, client, make_user, make_image, case):
    user_id = make_user("ada@example.com", password="old password 1")
    with app.app_context():
        user = db.session.get(User, user_id)
        fresh = links.password_reset_token(user)
        fingerprint = links.read_token(links.PASSWORD_RESET, fresh, None)["fp"]
    token = {
        "expired": token_for(app, links.PASSWORD_RESET, {"user": user_id, "fp": fingerprint}, age_seconds=3601),
        "tampered": fresh[:-3] + ("abc" if not fresh.endswith("abc") else "xyz"),
        "wrong purpose": result_token(app, make_image(user_id)),
        "unknown user": token_for(app, links.PASSWORD_RESET, {"user": 999, "fp": fingerprint}),
        "password changed": fresh,
    }[case]
    if case == "password changed":
        with app.app_context():
            db.session.get(User, user_id).set_password("changed meanwhile")
            db.session.commit()
    page = client.get(f"/auth/reset/{token}")
    assert page.status_code == 404
    expected = "This reset link has expired" if case == "expired" else "This reset link does not work"
    assert expected in page.get_data(as_text=True)
    attempt = client.post(f"/auth/reset/{token}", data={"password": "hijacked 123", "confirm": "hijacked 123",
                                                        "csrf_token": csrf_token(client, "/auth/forgot")})
    assert attempt.status_code == 404
    with app.app_context():
        assert not db.session.get(User, user_id).check_password("hijacked 123")


def test_asking_is_throttled_per_address(app, client, make_user):
    make_user("ada@example.com")
    statuses = [ask_for_link(client, "ada@example.com").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert ask_for_link(client, "grace@example.com").status_code == 200


def test_login_page_links_to_the_reset_form(client):
    assert 'href="/auth/forgot"' in client.get("/auth/login").get_data(as_text=True)
