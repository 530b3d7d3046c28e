"""Every response's security headers, caching, and Secure cookies over https."""
from __future__ import annotations

import pytest

from tests.support import Auth
from webapp import config, create_app


def policy(response) -> dict[str, str]:
    """The Content-Security-Policy as {directive: sources}."""
    header = response.headers["Content-Security-Policy"]
    return dict([*part.strip().split(" ", 1), ""][:2] for part in header.split(";") if part.strip())


def other_app(**settings):
    """The app of this test's deployment with some settings changed."""
    return create_app({**config.from_environment(), "TESTING": True, **settings})


def test_csp_on_every_kind_of_response(client, make_user, make_image, app):
    ada = make_user("ada@example.com")
    image_id = make_image(ada)
    anonymous = [client.get("/"), client.get("/auth/login"), client.get("/nope"), client.get("/api/generations/x")]
    Auth(client).login()
    signed_in = [client.get("/"), client.get("/gallery"), client.get(f"/images/{image_id}"),
                 client.get(f"/images/{image_id}/file"), client.get("/static/js/easel.js")]
    for response in anonymous + signed_in:
        csp = policy(response)
        assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'"
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
        assert csp["img-src"] == "'self' data: blob:"
        assert "Strict-Transport-Security" not in response.headers  # http site
        response.close()


def test_no_inline_script_or_style_in_pages(client, make_user, make_image):
    ada = make_user("ada@example.com", is_admin=True)
    image_id = make_image(ada)
    Auth(client).login()
    for path in ("/", "/gallery", "/explore", f"/images/{image_id}", "/auth/account", "/admin/", "/admin/images",
                 "/admin/users", "/admin/reports", "/admin/audit", "/admin/terms"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html, path


def test_signed_in_pages_are_not_stored_and_images_are_private_and_short(client, make_user, make_image):
    ada = make_user("ada@example.com")
    image_id = make_image(ada)
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")  # the public landing page
    Auth(client).login()
    for path in ("/", "/gallery", f"/images/{image_id}", "/auth/account"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    for path in (f"/images/{image_id}/file", f"/images/{image_id}/thumbnail"):
        response = client.get(path)
        assert response.headers["Cache-Control"] == "private, max-age=300", path
        response.close()


def test_hsts_and_secure_cookies_when_the_site_is_https(app_env, app):
    https = other_app(PUBLIC_BASE_URL="https://art.example.org", SESSION_COOKIE_SECURE=True,
                      REMEMBER_COOKIE_SECURE=True)
    response = https.test_client().get("/auth/login", base_url="https://art.example.org")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert all("; Secure" in c for c in response.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize("proxies, secure", [(1, True), (0, False)])
def test_https_behind_a_trusted_proxy_gets_secure_cookies(app_env, app, proxies, secure):
    behind = other_app(PROXY_COUNT=proxies)  # PUBLIC_BASE_URL is http here, so the setting alone says "not secure"
    response = behind.test_client().get("/auth/login", headers={"X-Forwarded-Proto": "https",
                                                                "X-Forwarded-For": "203.0.113.9"})
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all(("; Secure" in c) is secure for c in cookies)


def test_s3_endpoint_may_serve_images(app_env, app):
    s3 = other_app(STORAGE="s3", S3_BUCKET="b", S3_ENDPOINT_URL="http://127.0.0.1:9000/some/path")
    assert policy(s3.test_client().get("/auth/login"))["img-src"] == "'self' data: blob: http://127.0.0.1:9000"
