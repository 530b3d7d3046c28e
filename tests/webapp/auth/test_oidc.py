"""Sign in with OpenID Connect against a real provider on 127.0.0.1 (tests/support/oidc_provider.py): the whole
redirect dance through the live site, a forged state, a replayed code, an unverified email, a disallowed domain."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from tests.support import csrf_token
from tests.support.oidc_provider import OIDCProvider, Person
from webapp.extensions import db
from webapp.tables import User, UserIdentity

pytestmark = pytest.mark.db

CALLBACK = "/auth/oidc/local/callback"


@pytest.fixture
def provider():
    started = OIDCProvider().start()
    started.register("easel", "client-secret")
    yield started
    started.stop()


@pytest.fixture
def deployment_env(deployment_env, provider):
    """The site's settings name the local provider (as the docs show)."""
    return {**deployment_env, "OIDC_PROVIDERS": "local", "OIDC_LOCAL_ISSUER": provider.issuer,
            "OIDC_LOCAL_CLIENT_ID": "easel", "OIDC_LOCAL_CLIENT_SECRET": "client-secret",
            "OIDC_LOCAL_LABEL": "School account", "OIDC_ALLOWED_DOMAINS": "example.com"}


@pytest.fixture
def site(live_server, provider) -> str:
    provider.register("easel", "client-secret", live_server + CALLBACK)
    return live_server


def signed_in(browser: requests.Session, site: str) -> bool:
    return 'id="sign-out"' in browser.get(site + "/").text


def to_callback(browser: requests.Session, site: str, start: str = "/auth/oidc/local") -> str:
    """Start a sign-in and follow the provider's redirect up to (not into) the site's callback; its URL."""
    to_provider = browser.get(site + start, allow_redirects=False)
    assert to_provider.status_code == 302, to_provider.text[:500]
    asked = parse_qs(urlsplit(to_provider.headers["Location"]).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"] and asked["nonce"]
    assert asked["state"] and asked["redirect_uri"] == [site + CALLBACK]
    back = browser.get(to_provider.headers["Location"], allow_redirects=False)
    assert back.status_code == 302 and back.headers["Location"].startswith(site + CALLBACK), back.text[:500]
    return back.headers["Location"]


def accounts(app) -> list[tuple[str, list[str]]]:
    with app.app_context():
        return [(user.email, list(db.session.scalars(select(UserIdentity.subject)
                                                     .where(UserIdentity.user_id == user.id))))
                for user in db.session.scalars(select(User).order_by(User.id))]


def test_the_whole_dance_makes_an_account_then_signs_it_in_again(app, site, provider):
    browser = requests.Session()
    login_page = browser.get(site + "/auth/login").text
    assert "Sign in with School account" in login_page
    done = browser.get(site + "/auth/oidc/local?next=/gallery")
    assert done.url == site + "/gallery" and 'id="sign-out"' in done.text
    assert accounts(app) == [("ada@example.com", ["person-1"])]
    again = requests.Session()
    assert again.get(site + "/auth/oidc/local").url == site + "/" and signed_in(again, site)
    assert accounts(app) == [("ada@example.com", ["person-1"])]  # the same account, not a second one


def test_an_existing_account_of_the_verified_email_is_linked(app, site, provider, make_user):
    ada = make_user("ADA@example.com")
    browser = requests.Session()
    browser.get(site + "/auth/oidc/local")
    assert signed_in(browser, site)
    with app.app_context():
        assert db.session.scalar(select(UserIdentity.user_id)) == ada
    assert accounts(app) == [("ada@example.com", ["person-1"])]


def test_a_forged_state_is_refused_before_the_code_is_used(app, site, provider):
    browser = requests.Session()
    callback = to_callback(browser, site)
    query = parse_qs(urlsplit(callback).query)
    forged = browser.get(site + CALLBACK + "?" + urlencode({"code": query["code"][0], "state": "forged"}))
    assert forged.status_code == 400 and "did not start in this browser" in forged.text
    assert provider.token_requests == 0 and not signed_in(browser, site) and accounts(app) == []
    # a callback that this browser never started (another browser's link) is refused the same way
    stranger = requests.Session()
    assert stranger.get(callback).status_code == 400 and not signed_in(stranger, site)


def test_a_replayed_code_is_refused_by_the_provider(app, site, provider):
    first = requests.Session()
    callback = to_callback(first, site)
    assert first.get(callback).url == site + "/" and signed_in(first, site)
    used_code = parse_qs(urlsplit(callback).query)["code"][0]
    second = requests.Session()
    fresh = parse_qs(urlsplit(to_callback(second, site)).query)
    replay = second.get(site + CALLBACK + "?" + urlencode({"code": used_code, "state": fresh["state"][0]}))
    assert replay.status_code == 400 and "did not sign you in" in replay.text
    assert provider.token_requests == 2 and not signed_in(second, site)


def test_an_unverified_email_is_not_taken(app, site, provider, make_user):
    make_user("eve@example.com")
    provider.person = Person(sub="person-2", email="eve@example.com", email_verified=False)
    browser = requests.Session()
    refused = browser.get(site + "/auth/oidc/local")
    assert refused.status_code == 403 and "eve@example.com is not verified" in refused.text
    assert not signed_in(browser, site)
    assert accounts(app) == [("eve@example.com", [])]  # not linked either


def test_a_domain_outside_the_allowed_ones_is_refused(app, site, provider):
    provider.person = Person(sub="person-3", email="mallory@elsewhere.test")
    browser = requests.Session()
    refused = browser.get(site + "/auth/oidc/local")
    assert refused.status_code == 403 and "Accounts of elsewhere.test cannot sign in here" in refused.text
    assert not signed_in(browser, site) and accounts(app) == []


def test_a_suspended_account_is_not_signed_in(app, site, provider, make_user):
    make_user("ada@example.com", is_banned=True)
    browser = requests.Session()
    assert browser.get(site + "/auth/oidc/local").status_code == 403 and not signed_in(browser, site)


def test_oidc_only_turns_password_sign_up_off(app, client):
    app.config["OIDC_ONLY"] = True
    landing = client.get("/").get_data(as_text=True)
    assert "Create an account" not in landing and "Sign in with School account" not in landing
    assert "Sign in with School account" in client.get("/auth/login").get_data(as_text=True)
    token = csrf_token(client, "/auth/login")
    for response in (client.get("/auth/register"), client.post("/auth/register", data={
            "email": "new@example.com", "password": "correct horse", "confirm": "correct horse", "csrf_token": token})):
        assert response.status_code == 303 and response.headers["Location"].endswith("/auth/login")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert client.get("/auth/oidc/nobody").status_code == 404


@pytest.mark.parametrize(("env", "message"), [
    ({"OIDC_PROVIDERS": "local"}, "so set OIDC_LOCAL_ISSUER, OIDC_LOCAL_CLIENT_ID, OIDC_LOCAL_CLIENT_SECRET"),
    ({"OIDC_PROVIDERS": "Bad Name"}, "OIDC_PROVIDERS names are"),
    ({"OIDC_PROVIDERS": "", "OIDC_ONLY": "1"}, "OIDC_ONLY=1 turns password sign-up off"),
    ({"OIDC_PROVIDERS": "x", "OIDC_X_ISSUER": "http://idp.example", "OIDC_X_CLIENT_ID": "a",
      "OIDC_X_CLIENT_SECRET": "b"}, "must be an https:// URL"),
])
def test_settings_are_checked_at_start_up(monkeypatch, env, message):
    from webapp.config import ConfigError, oidc_settings

    for key in ("OIDC_LOCAL_ISSUER", "OIDC_LOCAL_CLIENT_ID", "OIDC_LOCAL_CLIENT_SECRET", "OIDC_ONLY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        oidc_settings()


def test_a_provider_that_does_not_answer_is_a_clear_503(app, site, provider):
    provider.stop()
    browser = requests.Session()
    down = browser.get(site + "/auth/oidc/local")
    assert down.status_code == 503 and "School account does not answer right now" in down.text
    assert not signed_in(browser, site) and accounts(app) == []
