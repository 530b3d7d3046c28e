"""Easel's web application: ``create_app`` builds it from small registration steps."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from . import config

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask app.

    Args:
        test_config: the whole configuration, used instead of the environment (tests).

    Returns:
        The configured app; no network, migrations or model loading happen here.
    """
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(config.INSTANCE_DIR),
    )
    app.config.from_mapping(config.from_environment() if test_config is None else {})
    if test_config is not None:
        app.config.from_mapping(test_config)
    register_monitoring(app)
    register_input_guard(app)
    register_extensions(app)
    register_services(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_hooks(app)
    return app


def register_monitoring(app: Flask) -> None:
    """``/metrics``, ``/healthz``, ``/readyz`` and the request timing (first, so its clock starts first)."""
    from .monitoring import register

    register(app)


def register_input_guard(app: Flask) -> None:
    """Every body is parsed and bounded before anything reads it (``webapp.inputs``)."""
    from .inputs import register

    register(app)


def register_extensions(app: Flask) -> None:
    """Bind the extensions created in ``extensions.py``."""
    from .extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL"))
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    from .auth.session import load_user, load_user_from_request

    login_manager.user_loader(load_user)
    login_manager.request_loader(load_user_from_request)


def register_services(app: Flask) -> None:
    """Redis, storage, the mailer and the catalog: one of each per app, created on first use."""
    from . import services

    services.bind(app)


def register_blueprints(app: Flask) -> None:
    """One blueprint per feature (after the ``<id:…>`` URL converter that their routes use)."""
    from .urls import RowIdConverter

    app.url_map.converters["id"] = RowIdConverter
    from .admin import bp as admin_bp
    from .api import bp as api_bp
    from .auth import bp as auth_bp
    from .collections import bp as collections_bp
    from .gallery import bp as gallery_bp
    from .grids.routes import bp as grids_bp
    from .groups.routes import bp as groups_bp
    from .links import bp as links_bp
    from .prompting import style_pages  # noqa: F401  (adds the styles pages to the blueprint)
    from .prompting.routes import bp as prompting_bp
    from .studio import bp as studio_bp

    app.register_blueprint(studio_bp)
    app.register_blueprint(gallery_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(links_bp)
    app.register_blueprint(collections_bp)
    app.register_blueprint(groups_bp, url_prefix="/groups")
    app.register_blueprint(prompting_bp)
    app.register_blueprint(grids_bp)
    register_apis(app)


def register_apis(app: Flask) -> None:
    """Easel's own API (``/api/v1``) and the OpenAI and AUTOMATIC1111 dialects, each behind the token gate."""
    from .api import register_apis as register

    register(app)


def register_errorhandlers(app: Flask) -> None:
    """Friendly error pages in the site's look (JSON under /api/)."""
    from .errors import register

    register(app)


def register_commands(app: Flask) -> None:
    """``flask`` CLI commands."""
    from .cli import register

    register(app)


def register_hooks(app: Flask) -> None:
    """The response headers every page gets, and proxy headers (``ProxyFix`` wraps everything, so it runs first)."""
    from .headers import register

    register(app)
    proxies = app.config.get("PROXY_COUNT", 0)
    if proxies:
        # Behind a load balancer: trust its X-Forwarded-For/Proto so throttling sees the client's address
        # and cookies know the scheme. Never without a proxy: clients could forge them.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
