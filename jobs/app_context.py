"""Jobs run inside a Flask app context so they share the web app's models and settings."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, has_app_context

_app: Flask | None = None


def get_app() -> Flask:
    """The worker's app, built once per process."""
    global _app
    if _app is None:
        from webapp import create_app

        _app = create_app()
    return _app


def with_app(func: Callable) -> Callable:
    """Run ``func`` in an app context unless one is already active."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return func(*args, **kwargs)
        with get_app().app_context():
            return func(*args, **kwargs)

    return wrapper
