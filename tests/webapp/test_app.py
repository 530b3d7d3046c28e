"""The app as a process: start-up without torch, commands, migrations, configuration."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from tests.support import ROOT
from webapp import config
from webapp.extensions import db
from webapp.tables import User


def test_web_process_does_not_import_torch(app_env):
    code = ("import sys, wsgi; assert wsgi.app; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'diffusers', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **app_env},
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_production_refuses_to_start_without_secret(monkeypatch):
    monkeypatch.setenv("EASEL_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigError, match="SECRET_KEY is not set"):
        config.from_environment()


@pytest.mark.parametrize(("env", "message"), [
    ({"MAIL_BACKEND": "mailgun", "MAILGUN_DOMAIN": "mg.example.org"}, "needs MAILGUN_API_KEY and MAILGUN_DOMAIN"),
    ({"MAIL_BACKEND": "mailgun", "MAILGUN_API_KEY": "key-1"}, "needs MAILGUN_API_KEY and MAILGUN_DOMAIN"),
    ({"MAIL_BACKEND": "smtp"}, "must be console, file or mailgun, got 'smtp'"),
])
def test_mail_settings_that_cannot_send_stop_start_up(monkeypatch, env, message):
    for name in ("MAILGUN_API_KEY", "MAILGUN_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(config.ConfigError, match=message):
        config.from_environment()
    monkeypatch.setenv("MAILGUN_API_KEY", "key-1")
    monkeypatch.setenv("MAILGUN_DOMAIN", "mg.example.org")
    if env["MAIL_BACKEND"] == "mailgun":
        assert config.from_environment()["MAIL_BACKEND"] == "mailgun"


def test_retention_days_may_be_0_for_keeping_every_image_but_not_negative(monkeypatch):
    monkeypatch.setenv("RETENTION_DAYS", "0")
    assert config.from_environment()["RETENTION_DAYS"] == 0
    monkeypatch.setenv("RETENTION_DAYS", "-1")
    with pytest.raises(config.ConfigError, match=r"RETENTION_DAYS must be 0 \(keep every image\) or more days"):
        config.from_environment()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("API_RATE_LIMIT", "lots", "API_RATE_LIMIT must be a rate such as '120 per minute'"),
    ("OPENAI_WAIT_SECONDS", "0", "OPENAI_WAIT_SECONDS must be at least 1"),
])
def test_api_settings_are_checked_at_start_up(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(config.ConfigError, match=message):
        config.from_environment()
    monkeypatch.delenv(name)
    assert config.from_environment()["API_RATE_LIMIT"] == "120 per minute"


def test_development_secret_is_generated_and_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("EASEL_ENV", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    first = config.from_environment()["SECRET_KEY"]
    assert len(first) == 64
    assert config.from_environment()["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_database_url_forms(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert config.from_environment()["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_https_public_url_makes_cookies_secure(monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://art.example.org/")
    settings = config.from_environment()
    assert settings["SESSION_COOKIE_SECURE"] and settings["REMEMBER_COOKIE_SECURE"]
    assert settings["PUBLIC_BASE_URL"] == "https://art.example.org"


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("127.0.0.1", "5102", "http://127.0.0.1:5102"),
    ("0.0.0.0", "8000", "http://127.0.0.1:8000"),  # noqa: S104 (a wildcard is reached on the loopback address)
    ("::", "8001", "http://[::1]:8001"),
    ("::1", "8002", "http://[::1]:8002"),
    ("art.local", "80", "http://art.local:80"),
])
def test_public_url_follows_host_and_port_when_unset(monkeypatch, host, port, expected):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("HOST", host)
    monkeypatch.setenv("PORT", port)
    assert config.from_environment()["PUBLIC_BASE_URL"] == expected
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://art.example.org")  # the explicit address wins
    assert config.from_environment()["PUBLIC_BASE_URL"] == "https://art.example.org"


@pytest.mark.db
def test_create_admin_from_env(app, runner, monkeypatch):
    monkeypatch.setenv("EASEL_ADMIN_PASSWORD", "admin password")
    result = runner.invoke(args=["create-admin", "Root@Example.com"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User))
        assert (user.email, user.is_admin) == ("root@example.com", True)
        assert user.check_password("admin password")


def test_create_admin_prompts_and_validates(app, runner, monkeypatch):
    monkeypatch.delenv("EASEL_ADMIN_PASSWORD", raising=False)
    result = runner.invoke(args=["create-admin", "root@example.com"], input="short\nshort\n")
    assert result.exit_code != 0
    assert "8 to 128 characters" in result.output
    result = runner.invoke(args=["create-admin", "root@example.com"], input="long enough\nlong enough\n")
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["create-admin", "not-an-email"]).exit_code != 0


def test_proxy_headers_trusted_only_when_configured(app, client, make_user):
    from tests.support import Auth, csrf_token

    app.config["LOGIN_IP_LIMIT"] = "2 per 15 minutes"
    for n in range(2):
        Auth(client).login(f"u{n}@example.com", "wrong password")
    # Without PROXY_COUNT a forged X-Forwarded-For does not give a fresh address.
    token = csrf_token(client, "/auth/login")
    response = client.post("/auth/login", data={"email": "x@example.com", "password": "wrong password",
                                                "csrf_token": token}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 429


def test_proxy_fix_applied(app_env, monkeypatch):
    from werkzeug.middleware.proxy_fix import ProxyFix

    from webapp import create_app

    monkeypatch.setenv("PROXY_COUNT", "1")
    assert isinstance(create_app().wsgi_app, ProxyFix)
    monkeypatch.setenv("PROXY_COUNT", "0")
    assert not isinstance(create_app().wsgi_app, ProxyFix)


def test_passwords_get_full_strength_scrypt_outside_the_tests(monkeypatch) -> None:
    from werkzeug.security import generate_password_hash

    from webapp import config

    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    for env in ("production", "development"):
        monkeypatch.setenv("EASEL_ENV", env)
        method = config.from_environment()["PASSWORD_METHOD"]
        assert method == "scrypt"
        assert generate_password_hash("x", method=method).startswith("scrypt:32768:8:1$")
    monkeypatch.setenv("EASEL_ENV", "test")
    assert config.from_environment()["PASSWORD_METHOD"] == "scrypt:1024:8:1"


def test_the_web_follows_an_edited_catalog_without_a_restart(app, tmp_path):
    """An admin adds a model to the catalog file: the running site lists it; an unchanged file is not re-read."""
    from tests.support import TEST_CATALOG
    from webapp import services

    catalog = tmp_path / "catalog.toml"
    catalog.write_text(TEST_CATALOG.read_text(), encoding="utf-8")
    app.config["EASEL_CATALOG"] = str(catalog)
    app.extensions["easel"].__dict__.pop("catalog_file", None)
    with app.app_context():
        before = set(services.catalog())
        assert "added-later" not in before
        services.catalog()
        assert app.extensions["easel"].catalog_file.reads == 1
        tiny = catalog.read_text().split("[models.easel-tiny]")[1].split("\n\n")[0]
        catalog.write_text(catalog.read_text() + "\n[models.added-later]" + tiny + "\n", encoding="utf-8")
        assert set(services.catalog()) == before | {"added-later"}
        assert app.extensions["easel"].catalog_file.reads == 2
