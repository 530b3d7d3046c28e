"""Admin Models page: catalog models and LoRAs, their availability, the workers holding them, jobs per model."""
from __future__ import annotations

from flask import render_template
from redis.exceptions import RedisError

from .base import bp
from .dashboard import REDIS_DOWN
from .model_status import models_overview


@bp.get("/models")
def models():
    """Which models can run, who serves and holds each, and what waits for it."""
    try:
        overview, redis_error = models_overview(), None
    except RedisError:
        overview, redis_error = None, REDIS_DOWN
    return render_template("admin/models.html", overview=overview, redis_error=redis_error)
