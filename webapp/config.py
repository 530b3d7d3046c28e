"""Settings, read from the environment in one place.

Every deployment setting is an environment variable named here and listed in the README.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from models.catalog import CATALOG_PATH, DEFAULT_MODEL
from models.precision import PrecisionError
from models.precision import check as check_precision

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("EASEL_INSTANCE_DIR", ROOT / "instance"))


# scrypt is werkzeug's default memory-hard KDF (N = 2**15); named so a library default change never weakens it.
PASSWORD_METHOD = "scrypt"  # noqa: S105 (a hash method name, not a password)
# EASEL_ENV=test only: the same KDF at 1/32 of the cost, so the test suite's thousands of sign-ups and
# sign-ins do not spend minutes hashing. Production and development always get PASSWORD_METHOD.
TEST_PASSWORD_METHOD = "scrypt:1024:8:1"  # noqa: S105
CSRF_TOKEN_SECONDS = 4 * 3600  # a form left open longer gets the "this form has expired" page


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _rate(name: str, default: str) -> str:
    """A Flask-Limiter rate such as ``120 per minute``, checked now rather than at the first request."""
    from limits import parse_many

    raw = os.environ.get(name, "") or default
    try:
        parse_many(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a rate such as '120 per minute' or '10/second', got {raw!r}") from exc
    return raw


def _positive(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def cleanup_cron(value: str | None = None) -> str:
    """``CLEANUP_AT`` ("HH:MM", the scheduler's local time) as a daily cron expression ("M H * * *")."""
    raw = (os.environ.get("CLEANUP_AT", "03:30") if value is None else value).strip()
    hours, _, minutes = raw.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2):
        raise ConfigError(f"CLEANUP_AT must be a time of day as HH:MM (for example 03:30), got {raw!r}")
    return f"{int(minutes)} {int(hours)} * * *"


def admin_password_from(name: str) -> str | None:
    """The password ``flask create-admin`` reads from the variable ``name`` (EASEL_ADMIN_PASSWORD), or None."""
    return os.environ.get(name)


def precision_setting() -> str:
    """``EASEL_PRECISION``: auto, fp32, bf16 or fp16 for every model this worker runs; empty: each catalog entry's."""
    raw = os.environ.get("EASEL_PRECISION", "").strip()
    if not raw:
        return ""
    try:
        return check_precision(raw, "EASEL_PRECISION")
    except PrecisionError as exc:
        raise ConfigError(str(exc)) from exc


def model_settings() -> dict:
    """How a generation worker holds its models: how many stay warm, GPU headroom, compile, offload, precision."""
    loaded = _int("EASEL_MAX_LOADED_MODELS", 2)
    if loaded < 1:
        raise ConfigError(f"EASEL_MAX_LOADED_MODELS must be at least 1, got {loaded}")
    return {
        "EASEL_PRECISION": precision_setting(),
        "EASEL_MAX_LOADED_MODELS": loaded,
        "EASEL_GPU_HEADROOM_MB": _int("EASEL_GPU_HEADROOM_MB", 6144),
        "EASEL_COMPILE": _bool(os.environ.get("EASEL_COMPILE")),
        # the CPU runs a model's UNet through OpenVINO where `flask models optimize NAME` made its IR
        "EASEL_OPENVINO": _bool(os.environ.get("EASEL_OPENVINO"), default=True),
        "EASEL_OFFLOAD": _bool(os.environ.get("EASEL_OFFLOAD")),
        # a CPU worker keeps the memory it frees for the next step (models/allocator.py; docs/precision.md)
        "EASEL_KEEP_FREED_MEMORY": _bool(os.environ.get("EASEL_KEEP_FREED_MEMORY"), default=True),
    }


def _score(name: str, default: str) -> float:
    raw = os.environ.get(name, "") or default
    try:
        score = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number between 0 and 1, got {raw!r}") from exc
    if not 0 < score <= 1:
        raise ConfigError(f"{name} must be a number between 0 and 1, got {raw!r}")
    return score


def safety_settings() -> dict:
    """``SAFETY_CHECK`` (on unless set to 0) and ``SAFETY_THRESHOLD`` (a detector score from 0 to 1); the prompt's
    text classifier: ``PROMPT_CLASSIFIER`` (off unless set to 1; a group may turn it on or off for its members) and
    ``PROMPT_CLASSIFIER_THRESHOLD`` (the classifier's score from 0 to 1 that refuses a prompt)."""
    return {"SAFETY_CHECK": _bool(os.environ.get("SAFETY_CHECK"), True),
            "SAFETY_THRESHOLD": _score("SAFETY_THRESHOLD", "0.6"),
            "PROMPT_CLASSIFIER": _bool(os.environ.get("PROMPT_CLASSIFIER")),
            "PROMPT_CLASSIFIER_THRESHOLD": _score("PROMPT_CLASSIFIER_THRESHOLD", "0.9")}


OIDC_NAME_RULE = "lower-case letters, digits and '_' (at most 32)"


def oidc_settings() -> dict:
    """``OIDC_PROVIDERS`` and each provider's ``OIDC_<NAME>_ISSUER``, ``_CLIENT_ID``, ``_CLIENT_SECRET``, ``_LABEL``
    (and optional ``_SCOPE``), ``OIDC_ALLOWED_DOMAINS`` and ``OIDC_ONLY``, checked at start-up."""
    providers = {}
    for raw in os.environ.get("OIDC_PROVIDERS", "").split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
            raise ConfigError(f"OIDC_PROVIDERS names are {OIDC_NAME_RULE}, got {raw.strip()!r}")
        prefix = f"OIDC_{name.upper()}_"
        issuer = os.environ.get(prefix + "ISSUER", "").strip().rstrip("/")
        client_id = os.environ.get(prefix + "CLIENT_ID", "").strip()
        secret = os.environ.get(prefix + "CLIENT_SECRET", "")
        missing = [prefix + key for key, value in (("ISSUER", issuer), ("CLIENT_ID", client_id),
                                                    ("CLIENT_SECRET", secret)) if not value]
        if missing:
            raise ConfigError(f"OIDC_PROVIDERS lists {name}, so set {', '.join(missing)}")
        if not issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigError(f"{prefix}ISSUER must be an https:// URL (http only on this machine), got {issuer!r}")
        providers[name] = {"issuer": issuer, "client_id": client_id, "client_secret": secret,
                           "label": os.environ.get(prefix + "LABEL", "").strip() or name.capitalize(),
                           "scope": os.environ.get(prefix + "SCOPE", "").strip() or "openid email profile"}
    domains = [part.strip().lower().lstrip("@") for part in os.environ.get("OIDC_ALLOWED_DOMAINS", "").split(",")
               if part.strip()]
    only = _bool(os.environ.get("OIDC_ONLY"))
    if only and not providers:
        raise ConfigError("OIDC_ONLY=1 turns password sign-up off: name at least one provider in OIDC_PROVIDERS")
    return {"OIDC_PROVIDERS": providers, "OIDC_ALLOWED_DOMAINS": domains, "OIDC_ONLY": only,
            "OIDC_TIMEOUT": _positive("OIDC_TIMEOUT", 10)}


def reaper_interval() -> int:
    """``EASEL_REAPER_INTERVAL``: seconds between runs of the reaper of abandoned generations."""
    seconds = _int("EASEL_REAPER_INTERVAL", 30)
    if seconds < 1:
        raise ConfigError(f"EASEL_REAPER_INTERVAL must be at least 1 second, got {seconds}")
    return seconds


def metrics_dir() -> str:
    """``PROMETHEUS_MULTIPROC_DIR``: where every process of a host writes its counts ("" : each counts alone).

    Read by ``prometheus_client`` itself too, when it is first imported, so it is set before a process starts.
    """
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def tracing_endpoint() -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT``: traces are on when it is set (the exporter reads its other OTEL_* itself)."""
    return os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")


def tracing_service(default: str) -> str:
    """``OTEL_SERVICE_NAME``, else ``default`` (easel-web, easel-worker)."""
    return os.environ.get("OTEL_SERVICE_NAME", "") or default


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a helper program (``pg_dump``, ``psql``): this process's, plus ``extra``."""
    return {**os.environ, **extra}


@dataclass(frozen=True)
class LaunchSettings:
    """What ``make run`` needs before the app exists: where to listen and whether to embed Redis."""

    host: str
    port: int
    redis_url: str  # empty: start the embedded Redis
    embedded_redis_port: int
    restart_tries: int


def launch_settings() -> LaunchSettings:
    """``HOST``, ``PORT``, ``REDIS_URL``, ``EASEL_REDIS_PORT`` and ``EASEL_RESTART_TRIES`` for the launcher."""
    return LaunchSettings(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=_int("PORT", 5000),
        redis_url=os.environ.get("REDIS_URL", ""),
        embedded_redis_port=_int("EASEL_REDIS_PORT", 6390),
        restart_tries=_int("EASEL_RESTART_TRIES", 10),
    )


def web_server_settings() -> dict:
    """The web server's settings (webapp/serve.py, docs/operations-web-server.md): waitress's adjustments, and
    ``per_address``, the cap on one client address's open connections (0: none)."""
    return {
        "host": os.environ.get("HOST", "127.0.0.1"),
        "port": _int("PORT", 5000),
        "threads": _positive("WEB_THREADS", 8),
        "channel_timeout": _positive("WEB_IDLE_TIMEOUT", 15),
        "cleanup_interval": 5,
        "connection_limit": _positive("WEB_CONNECTION_LIMIT", 500),
        "asyncore_use_poll": True,
        "max_request_body_size": 64 * 1024 * 1024,
        "ident": "Easel",
        "per_address": max(0, _int("WEB_CONNECTIONS_PER_ADDRESS", 100)),
    }


def base_url_for(host: str, port: int) -> str:
    """The address a browser on this machine uses for a server listening on ``host``:``port``.

    A wildcard address (``0.0.0.0``, ``::``) is reached as the loopback one; an IPv6 literal gets brackets.
    """
    host = host.strip() or "127.0.0.1"
    if host in {"0.0.0.0", "*"}:  # noqa: S104 (read, not bound)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def mail_destination() -> tuple[str, str]:
    """The mail backend's name and the folder the ``file`` backend writes to, for ``make run``'s banner
    (read without the rest of the settings, which the launcher does not need)."""
    backend = os.environ.get("MAIL_BACKEND", "console").strip().lower() or "console"
    return backend, os.environ.get("MAIL_FILE_DIR", "") or str(INSTANCE_DIR / "mail")


def public_base_url() -> str:
    """``PUBLIC_BASE_URL`` when set, else the address that ``HOST`` and ``PORT`` serve on.

    Workers build the links in emails and API answers without a request, so every process must see the same
    value: ``make run`` sets it once for all the processes it starts. Behind a proxy or a domain name, set it.
    """
    explicit = os.environ.get("PUBLIC_BASE_URL", "").strip()
    if explicit:
        return explicit.rstrip("/")
    settings = launch_settings()
    return base_url_for(settings.host, settings.port)


def _intervals(name: str, default: str) -> list[int]:
    """A comma-separated list of whole seconds, e.g. ``30,120,600``."""
    raw = os.environ.get(name) or default
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated whole seconds, got {raw!r}") from exc
    if any(value < 0 for value in values):
        raise ConfigError(f"{name} must not hold negative seconds, got {raw!r}")
    return values


def _networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A comma-separated list of networks in CIDR notation, e.g. ``10.20.0.0/16,2001:db8::/48``."""
    raw = os.environ.get(name, "")
    try:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated networks like 10.0.0.0/8, got {raw!r}") from exc


def _development_secret(instance_dir: Path) -> str:
    """A random key kept in instance/ so development sessions survive restarts."""
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _log_format() -> str:
    """``LOG_FORMAT``: ``text`` (default) or ``json`` (one object per line, with the request or job id)."""
    value = (os.environ.get("LOG_FORMAT", "") or "text").strip().lower()
    if value not in {"text", "json"}:
        raise ConfigError(f"LOG_FORMAT must be text or json, got {value!r}")
    return value


def _mail_backend() -> str:
    """MAIL_BACKEND, checked at start-up: a misconfigured mailer should stop the site, not every email."""
    kind = os.environ.get("MAIL_BACKEND", "console").strip().lower() or "console"
    if kind not in {"console", "file", "mailgun"}:
        raise ConfigError(f"MAIL_BACKEND must be console, file or mailgun, got {kind!r}")
    if kind == "mailgun" and not (os.environ.get("MAILGUN_API_KEY") and os.environ.get("MAILGUN_DOMAIN")):
        raise ConfigError("MAIL_BACKEND=mailgun needs MAILGUN_API_KEY and MAILGUN_DOMAIN")
    return kind


def _database_url(instance_dir: Path) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return f"sqlite:///{instance_dir / 'easel.db'}"
    # Heroku-style URLs name the scheme "postgres"; SQLAlchemy wants a driver.
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def from_environment() -> dict:
    """Build the Flask config mapping from environment variables.

    Returns:
        A dict for ``app.config.from_mapping``.

    Raises:
        ConfigError: in production without ``SECRET_KEY``, on a malformed number, or on mail settings
            that could never send (an unknown ``MAIL_BACKEND``, Mailgun without its key or domain).
    """
    env = os.environ.get("EASEL_ENV", "production").strip().lower()
    if env not in {"production", "development", "test"}:
        raise ConfigError(f"EASEL_ENV must be production, development or test, got {env!r}")
    instance_dir = INSTANCE_DIR
    secret = os.environ.get("SECRET_KEY", "")
    if not secret:
        if env == "production":
            raise ConfigError(
                "SECRET_KEY is not set. Set it to a long random string "
                "(python -c 'import secrets; print(secrets.token_hex(32))'), "
                "or set EASEL_ENV=development on a machine of your own."
            )
        secret = _development_secret(instance_dir)
    cleanup_cron()  # read by the scheduler (jobs.cron); checked here so a malformed CLEANUP_AT stops every process
    base_url = public_base_url()
    https = base_url.startswith("https://")
    remember_days = _int("REMEMBER_DAYS", 30)
    if remember_days < 1:
        raise ConfigError(f"REMEMBER_DAYS must be at least 1, got {remember_days}")
    retention_days = _int("RETENTION_DAYS", 30)
    if retention_days < 0:
        raise ConfigError(f"RETENTION_DAYS must be 0 (keep every image) or more days, got {retention_days}")
    return {
        "EASEL_ENV": env,
        "SECRET_KEY": secret,
        "INSTANCE_DIR": str(instance_dir),
        "SQLALCHEMY_DATABASE_URI": _database_url(instance_dir),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "EASEL_MODEL": os.environ.get("EASEL_MODEL", "") or DEFAULT_MODEL,
        "EASEL_CATALOG": os.environ.get("EASEL_CATALOG", "") or str(CATALOG_PATH),
        "EASEL_DEVICE": os.environ.get("EASEL_DEVICE", "") or "auto",
        "EASEL_TORCH_THREADS": _int("EASEL_TORCH_THREADS", max(1, (os.cpu_count() or 2) - 1)),
        "EASEL_HEARTBEAT_TTL": _int("EASEL_HEARTBEAT_TTL", 30),
        **model_settings(),
        **oidc_settings(),
        **safety_settings(),
        "EASEL_BATCH_MAX": max(1, _int("EASEL_BATCH_MAX", 4)),
        "EASEL_BATCH_WAIT_MS": max(0, _int("EASEL_BATCH_WAIT_MS", 100)),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "") or "INFO",
        "LOG_FORMAT": _log_format(),
        "STORAGE": os.environ.get("STORAGE", "local"),
        "MEDIA_DIR": os.environ.get("MEDIA_DIR", str(instance_dir / "media")),
        "S3_BUCKET": os.environ.get("S3_BUCKET", ""),
        "S3_ENDPOINT_URL": os.environ.get("S3_ENDPOINT_URL", "") or None,
        "S3_PREFIX": os.environ.get("S3_PREFIX", ""),
        "MAIL_BACKEND": _mail_backend(),
        "MAIL_FILE_DIR": os.environ.get("MAIL_FILE_DIR", str(instance_dir / "mail")),
        "MAILGUN_API_KEY": os.environ.get("MAILGUN_API_KEY", ""),
        "MAILGUN_DOMAIN": os.environ.get("MAILGUN_DOMAIN", ""),
        "MAILGUN_BASE_URL": os.environ.get("MAILGUN_BASE_URL", "https://api.mailgun.net").rstrip("/"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Easel <easel@localhost>"),
        "MAIL_RETRY_INTERVALS": _intervals("MAIL_RETRY_INTERVALS", "30,120,600,1800"),
        "RESET_LIMIT": os.environ.get("RESET_LIMIT", "5 per hour"),
        "PUBLIC_BASE_URL": base_url,
        "RETENTION_DAYS": retention_days,  # 0: images are kept until their owner deletes them
        "PUBLIC_SHOWCASE": _bool(os.environ.get("PUBLIC_SHOWCASE")),
        # A person's generations: at most MAX_ACTIVE_PER_USER run at once, at most MAX_QUEUED_PER_USER wait.
        "MAX_ACTIVE_PER_USER": max(1, _int("MAX_ACTIVE_PER_USER", 2)),
        "MAX_QUEUED_PER_USER": _int("MAX_QUEUED_PER_USER", 10),
        "MAX_TOKENS_PER_USER": _int("MAX_TOKENS_PER_USER", 10),
        "DAILY_IMAGE_QUOTA": _int("DAILY_IMAGE_QUOTA", 200),
        "MAX_GRID_CELLS": _int("MAX_GRID_CELLS", 36),  # cells of one X/Y/Z grid (docs/prompts.md)
        "RESULT_LINK_DAYS": _int("RESULT_LINK_DAYS", 7),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 10 * 1024 * 1024),
        "MAX_UPLOAD_PIXELS": _int("MAX_UPLOAD_PIXELS", 16_000_000),
        "MAX_CONTROLS": max(1, _int("MAX_CONTROLS", 2)),  # control images one generation may combine
        # Each limit is a list of windows: failing on past the first makes the wait grow (back-off).
        "LOGIN_LIMIT": os.environ.get("LOGIN_LIMIT", "") or "10 per 15 minutes;20 per hour;40 per day",
        "LOGIN_IP_LIMIT": os.environ.get("LOGIN_IP_LIMIT", "") or "30 per 15 minutes;60 per hour;200 per day",
        "REGISTER_LIMIT": os.environ.get("REGISTER_LIMIT", "") or "20 per hour",
        "REGISTER_TRUSTED_NETWORKS": _networks("REGISTER_TRUSTED_NETWORKS"),
        "REMEMBER_DAYS": remember_days,
        "REMEMBER_COOKIE_DURATION": timedelta(days=remember_days),
        "PROXY_COUNT": _int("PROXY_COUNT", 0),
        # GET /metrics: a scraper with this Bearer token, or from these networks; everyone else gets 404.
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
        "METRICS_ALLOWED_NETWORKS": _networks("METRICS_ALLOWED_NETWORKS"),
        # A worker on a machine of its own serves its counts here (0: off; on one machine the web's /metrics has them).
        "WORKER_METRICS_PORT": _int("WORKER_METRICS_PORT", 0),
        "WORKER_METRICS_HOST": os.environ.get("WORKER_METRICS_HOST", "") or "0.0.0.0",  # noqa: S104 (a container's port)
        # GET /readyz: a generation worker counts as alive while its last heartbeat is this recent.
        "READY_WORKER_SECONDS": _positive("READY_WORKER_SECONDS", 60),
        "API_RATE_LIMIT": _rate("API_RATE_LIMIT", "120 per minute"),
        # How long an OpenAI or A1111 call waits for its images (OPENAI_WAIT_SECONDS: its former name).
        "API_WAIT_SECONDS": _positive("API_WAIT_SECONDS", _positive("OPENAI_WAIT_SECONDS", 300)),
        # Requests of the waiting dialects (OpenAI, AUTOMATIC1111) each hold a web thread until their images are
        # made: at most this many per web process, so pages and polls keep the rest (waitress runs WEB_THREADS, 8).
        "API_MAX_WAITING": _positive("API_MAX_WAITING", 2),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "")
        or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(os.environ.get("SESSION_COOKIE_SECURE"), https),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool(os.environ.get("SESSION_COOKIE_SECURE"), https),
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "WTF_CSRF_TIME_LIMIT": CSRF_TOKEN_SECONDS,
        "PASSWORD_METHOD": TEST_PASSWORD_METHOD if env == "test" else PASSWORD_METHOD,
    }
