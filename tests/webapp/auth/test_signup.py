"""Sign-up: the same answer for a new and a taken address, the emailed link, the sign-up limit."""
from __future__ import annotations

import ipaddress
import re

import pytest
from sqlalchemy import func, select

from tests.support import Auth, body, csrf_token, links_in, run_chores, sent_mail
from webapp import config
from webapp.extensions import db
from webapp.tables import User

pytestmark = pytest.mark.db


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def page_text(response) -> str:
    """The page without its per-request values (CSRF tokens)."""
    return re.sub(r'value="[^"]+"|content="[^"]+"', "", response.get_data(as_text=True))


def test_a_taken_address_gets_the_same_answer_and_its_owner_an_email(app, app_env, make_user):
    make_user("ada@example.com")
    taken = Auth(app.test_client()).register("Ada@Example.com", "another password")
    new = Auth(app.test_client()).register("grace@example.com", "another password")
    assert taken.status_code == new.status_code == 200
    assert taken.headers.get("Set-Cookie", "").split("=")[0] == new.headers.get("Set-Cookie", "").split("=")[0]
    assert page_text(taken).replace("ada@example.com", "X") == page_text(new).replace("grace@example.com", "X")
    assert "Check your email" in new.get_data(as_text=True)
    assert user_count(app) == 1  # nothing is made before the link is used

    run_chores(app)
    mail = {message["To"]: message for message in sent_mail(app_env)}
    assert set(mail) == {"ada@example.com", "grace@example.com"}
    attempt = mail["ada@example.com"]
    assert attempt["Subject"] == "Someone tried to sign up with your address"
    assert links_in(body(attempt), "/auth/login") and links_in(body(attempt), "/auth/forgot")
    assert not links_in(body(attempt), "/auth/welcome/")
    with app.app_context():
        assert db.session.scalar(select(User)).check_password("correct horse")  # the owner's password stays
    assert mail["grace@example.com"]["Subject"] == "Finish creating your Easel account"


def test_the_emailed_link_makes_the_account_once(app, app_env, client, auth):
    auth.register("grace@example.com", "correct horse")
    run_chores(app)
    [link] = links_in(body(sent_mail(app_env)[0]), "/auth/welcome/")
    path = link.removeprefix(app_env["PUBLIC_BASE_URL"])
    page = client.get(path)  # a mail scanner opening the link makes nothing
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert user_count(app) == 0
    token = csrf_token(client, path)
    done = client.post(path, data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/"
    assert "Welcome, grace" in client.get("/").get_data(as_text=True)
    other = app.test_client()
    again = other.post(path, data={"csrf_token": csrf_token(other, "/auth/login")})
    assert again.status_code == 404 and "sign-up link does not work" in again.get_data(as_text=True)
    assert user_count(app) == 1
    # a used link, and one that never existed, say so at once (they used to say "Your address is confirmed")
    for dead in (path, "/auth/welcome/no-such-token", "/auth/welcome/" + "x" * 500):
        shown = other.get(dead)
        text = shown.get_data(as_text=True)
        assert shown.status_code == 404 and "sign-up link does not work" in text and "is confirmed" not in text


def test_register_limit_is_a_setting(app):
    app.config["REGISTER_LIMIT"] = "3 per hour"
    school = app.test_client()
    school.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    answers = [Auth(school).register(f"pupil{n}@example.com").status_code for n in range(4)]
    assert answers == [200, 200, 200, 429]


def test_trusted_networks_are_not_limited(app):
    app.config["REGISTER_LIMIT"] = "3 per hour"
    app.config["REGISTER_TRUSTED_NETWORKS"] = [ipaddress.ip_network("10.20.0.0/16")]
    school = app.test_client()
    school.environ_base["REMOTE_ADDR"] = "10.20.3.4"
    assert {Auth(school).register(f"pupil{n}@example.com").status_code for n in range(6)} == {200}
    outside = app.test_client()
    outside.environ_base["REMOTE_ADDR"] = "10.21.0.1"
    assert [Auth(outside).register(f"x{n}@example.com").status_code for n in range(4)][-1] == 429


def test_trusted_networks_setting_is_checked(monkeypatch):
    monkeypatch.setenv("REGISTER_TRUSTED_NETWORKS", "10.20.0.0/16, 2001:db8::/32")
    assert config.from_environment()["REGISTER_TRUSTED_NETWORKS"] == [
        ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("2001:db8::/32")]
    monkeypatch.setenv("REGISTER_TRUSTED_NETWORKS", "10.20.0.0/16,school")
    with pytest.raises(config.ConfigError, match="REGISTER_TRUSTED_NETWORKS"):
        config.from_environment()


def test_without_a_mail_server_the_page_shows_the_link(app, make_user):
    app.config["MAIL_BACKEND"] = "console"
    make_user("ada@example.com")
    client = app.test_client()
    page = Auth(client).register("grace@example.com", "another password").get_data(as_text=True)
    [link] = re.findall(r'id="finish-signup" href="([^"]+)"', page)
    finish = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert finish.status_code in (302, 303) and user_count(app) == 2
    taken = Auth(app.test_client()).register("ada@example.com", "another password").get_data(as_text=True)
    assert "already has an account" in taken and "finish-signup" not in taken
