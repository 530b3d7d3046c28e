"""Personal API tokens (webapp/api/tokens.py, webapp/auth/tokens.py, webapp/admin/tokens.py) and the gate
(webapp/api/gate.py): shown once, stored hashed, revoked, expired, banned owners, CSRF, rate limits."""
from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta

import pytest

from tests.support import api_token, audit_entries, bearer, csrf_token, post, sign_in

pytestmark = pytest.mark.db

NEW_TOKEN = re.compile(r'<code id="new-token"[^>]*>([^<]+)</code>')


def test_created_token_is_shown_once_and_stored_only_as_a_hash(app, signed_in):
    response = signed_in.post("/auth/tokens", data={"name": "my script", "csrf_token": csrf_token(signed_in, "/auth/tokens")})
    assert response.status_code == 200
    secret = NEW_TOKEN.search(response.get_data(as_text=True)).group(1)
    assert secret.startswith("easel_")
    listing = signed_in.get("/auth/tokens").get_data(as_text=True)
    assert "my script" in listing and secret not in listing and 'id="new-token"' not in listing
    from webapp.extensions import db
    from webapp.tables import ApiToken

    with app.app_context():
        row = db.session.scalar(db.select(ApiToken))
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in {row.name, row.public_id, row.secret_hash}
    from flask import Flask

    fresh = Flask.test_client(app)
    used = fresh.get("/api/v1/models", headers=bearer(secret))
    assert used.status_code == 200 and "Set-Cookie" not in used.headers  # a token never starts a session
    assert fresh.get("/auth/account").status_code == 302  # and signs nobody in on the site
    with app.app_context():
        last_used = db.session.scalar(db.select(ApiToken.last_used_at))
    assert last_used is not None and last_used.strftime("%Y-%m-%d %H:%M") in signed_in.get("/auth/tokens").get_data(
        as_text=True)


def test_token_form_needs_name_and_csrf(signed_in):
    assert signed_in.post("/auth/tokens", data={"name": "x"}).status_code == 400
    response = signed_in.post("/auth/tokens", data={"name": "", "csrf_token": csrf_token(signed_in, "/auth/tokens")})
    assert response.status_code == 400 and "new-token" not in response.get_data(as_text=True)


def test_owner_revokes_with_one_click_and_the_token_stops_at_once(app, client, make_user):
    user_id = make_user("ada@example.com")
    secret = api_token(app, user_id)
    assert client.get("/api/v1/models", headers=bearer(secret)).status_code == 200
    browser = sign_in(app, "ada@example.com")
    page = browser.get("/auth/tokens").get_data(as_text=True)
    token_id = re.search(r'action="/auth/tokens/(\d+)/revoke"', page).group(1)
    assert post(browser, f"/auth/tokens/{token_id}/revoke", token_page="/auth/tokens").status_code == 303
    response = client.get("/api/v1/models", headers=bearer(secret))
    assert response.status_code == 401
    assert response.content_type == "application/problem+json" and "revoked" in response.get_json()["detail"]
    assert "revoked" in browser.get("/auth/tokens").get_data(as_text=True)


def test_someone_elses_token_cannot_be_revoked_by_me(app, make_user):
    other = make_user("bob@example.com")
    api_token(app, other)
    make_user("ada@example.com")
    browser = sign_in(app, "ada@example.com")
    from webapp.extensions import db
    from webapp.tables import ApiToken

    with app.app_context():
        token_id = db.session.scalar(db.select(ApiToken.id))
    assert post(browser, f"/auth/tokens/{token_id}/revoke", token_page="/auth/tokens").status_code == 404


def test_admin_lists_and_revokes_anyones_token_audited(app, client, make_user):
    owner = make_user("bob@example.com")
    secret = api_token(app, owner, name="bob bot")
    admin_id = make_user("root@example.com", is_admin=True)
    admin = sign_in(app, "root@example.com")
    page = admin.get("/admin/tokens?q=bob").get_data(as_text=True)
    assert "bob bot" in page and secret not in page
    token_id = re.search(r'action="/admin/tokens/(\d+)/revoke"', page).group(1)
    assert post(admin, f"/admin/tokens/{token_id}/revoke", token_page="/admin/tokens").status_code == 303
    assert client.get("/api/v1/models", headers=bearer(secret)).status_code == 401
    assert audit_entries(app, "token.revoke") == [("token.revoke", "token", token_id, admin_id)]
    # non-admins do not see the page at all
    make_user("eve@example.com")
    assert sign_in(app, "eve@example.com").get("/admin/tokens").status_code == 404


def test_expired_unknown_and_malformed_tokens_get_401(app, client, make_user):
    from webapp.tables import utcnow

    user_id = make_user("ada@example.com")
    expired = api_token(app, user_id, expires_at=utcnow() - timedelta(seconds=1))
    good = api_token(app, user_id)
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for header in [bearer(expired), bearer(forged), bearer("easel_nothing_here"), bearer("sk-123"),
                   {"Authorization": "Token abc"}, {}]:
        response = client.get("/api/v1/generations", headers=header)
        assert response.status_code == 401, header
        assert response.content_type == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_banned_owners_tokens_stop_at_once(app, client, make_user):
    user_id = make_user("ada@example.com")
    secret = api_token(app, user_id)
    basic = {"Authorization": "Basic " + base64.b64encode(f"ada@example.com:{secret}".encode()).decode()}
    assert client.get("/sdapi/v1/sd-models", headers=basic).status_code == 200
    from webapp.extensions import db
    from webapp.tables import User

    with app.app_context():
        db.session.get(User, user_id).is_banned = True
        db.session.commit()
    assert client.get("/api/v1/models", headers=bearer(secret)).status_code == 401
    assert client.get("/sdapi/v1/sd-models", headers=basic).status_code == 401
    assert client.get("/v1/models", headers=bearer(secret)).status_code == 401


def test_basic_auth_needs_the_owners_email(app, client, make_user):
    secret = api_token(app, make_user("ada@example.com"))
    make_user("bob@example.com")
    for user in ["bob@example.com", "nobody@example.com"]:
        basic = {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}
        assert client.get("/sdapi/v1/options", headers=basic).status_code == 401
    basic = {"Authorization": "Basic " + base64.b64encode(f"ADA@example.com:{secret}".encode()).decode()}
    assert client.get("/sdapi/v1/options", headers=basic).status_code == 200
    assert client.get("/sdapi/v1/options", headers=bearer(secret)).status_code == 401  # Basic, as A1111


def test_cookie_session_cannot_write_without_the_csrf_header(signed_in):
    body = {"prompt": "a red circle", "model": "easel-tiny"}
    refused = signed_in.post("/api/v1/generations", json=body)
    assert refused.status_code == 400 and refused.content_type == "application/problem+json"
    assert signed_in.get("/api/v1/generations").status_code == 200  # reading with the cookie is fine
    token = csrf_token(signed_in, "/")
    assert signed_in.post("/api/v1/generations", json=body, headers={"X-CSRFToken": token}).status_code == 201
    # the dialects never take the cookie at all
    assert signed_in.get("/v1/models").status_code == 401
    assert signed_in.get("/sdapi/v1/sd-models").status_code == 401


@pytest.fixture
def tight_rate_limit(app_env, monkeypatch):
    monkeypatch.setenv("API_RATE_LIMIT", "3 per minute")


def test_per_account_rate_limit_gives_429_with_retry_after(tight_rate_limit, app, client, make_user):
    assert app.config["API_RATE_LIMIT"] == "3 per minute"
    user_id = make_user("ada@example.com")
    first, second = api_token(app, user_id), api_token(app, user_id)
    bobs = api_token(app, make_user("bob@example.com"))
    for _ in range(3):
        assert client.get("/api/v1/models", headers=bearer(first)).status_code == 200
    limited = client.get("/api/v1/models", headers=bearer(first))
    assert limited.status_code == 429 and limited.content_type == "application/problem+json"
    assert int(limited.headers["Retry-After"]) > 0
    openai_limited = client.get("/v1/models", headers=bearer(first))
    assert openai_limited.status_code == 429 and "error" in openai_limited.get_json()
    # per account: Ada's second token shares her limit (more tokens are not more calls); Bob has his own
    assert client.get("/api/v1/models", headers=bearer(second)).status_code == 429
    basic = {"Authorization": "Basic " + base64.b64encode(f"ada@example.com:{second}".encode()).decode()}
    assert client.get("/sdapi/v1/sd-models", headers=basic).status_code == 429
    assert client.get("/api/v1/models", headers=bearer(bobs)).status_code == 200


def test_live_tokens_are_capped_per_account(app, signed_in):
    app.config["MAX_TOKENS_PER_USER"] = 3
    page = "/auth/tokens"
    for number in range(3):
        response = signed_in.post(page, data={"name": f"script {number}", "csrf_token": csrf_token(signed_in, page)})
        assert response.status_code == 200
    refused = signed_in.post(page, data={"name": "one too many", "csrf_token": csrf_token(signed_in, page)})
    assert refused.status_code == 400 and "the most an account may have" in refused.get_data(as_text=True)
    from webapp.extensions import db
    from webapp.tables import ApiToken

    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ApiToken)) == 3
        first_id = db.session.scalar(db.select(ApiToken.id).order_by(ApiToken.id))
    assert post(signed_in, f"/auth/tokens/{first_id}/revoke", page).status_code == 303
    again = signed_in.post(page, data={"name": "one too many", "csrf_token": csrf_token(signed_in, page)})
    assert again.status_code == 200 and NEW_TOKEN.search(again.get_data(as_text=True))  # a revoked one frees a place


def test_sign_out_everywhere_keeps_tokens_unless_asked_to_revoke_them(app, make_user):
    user_id = make_user("ada@example.com")
    kept, revoked = api_token(app, user_id, "kept"), None
    browser = sign_in(app, "ada@example.com")
    page = browser.get("/auth/account").get_data(as_text=True)
    assert 'name="revoke_tokens"' in page and "and revoke my API tokens" in page
    assert post(browser, "/auth/logout-everywhere").status_code == 302
    assert browser.get("/auth/account").status_code == 302  # signed out
    client = app.test_client()
    assert client.get("/api/v1/models", headers=bearer(kept)).status_code == 200  # tokens are not sessions

    revoked = api_token(app, user_id, "second")
    browser = sign_in(app, "ada@example.com")
    assert post(browser, "/auth/logout-everywhere", revoke_tokens="y").status_code == 302
    for secret in (kept, revoked):
        assert client.get("/api/v1/models", headers=bearer(secret)).status_code == 401


def test_the_token_decides_who_calls_whatever_cookie_comes_with_it(app, make_user, make_image):
    """Flask-Login's request loader makes the token's owner the caller, also over a signed-in browser's cookie,
    and the browser stays Bob's afterwards (nothing of the token went into its session)."""
    ada = make_user("ada@example.com")
    make_user("bob@example.com")
    make_image(ada, prompt="ada's fox")
    browser = sign_in(app, "bob@example.com")
    mine = browser.get("/api/v1/images", headers=bearer(api_token(app, ada))).get_json()
    assert [item["prompt"] for item in mine["items"]] == ["ada's fox"]
    assert browser.get("/api/v1/images").get_json()["items"] == []  # the cookie alone is still Bob
