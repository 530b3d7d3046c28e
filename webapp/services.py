"""The app's shared services (Redis, storage, the mailer, the model catalog), each created once per app.

Everything in the web process and in the jobs reaches them through these accessors, inside an app
context; nothing else builds its own client.
"""
from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from flask import Flask, current_app
from redis import Redis

if TYPE_CHECKING:
    from models.catalog import CatalogFile, LoraEntry, ModelEntry

    from .mail.backends import Mailer
    from .storage import Storage

REDIS_TIMEOUT = 5  # seconds: a dead Redis fails fast instead of hanging a page or a worker
# Seconds a page may wait on Redis for something it can do without (live progress, queue position): a
# status poll must answer at once, even while Redis is paused, saving or failing over.
QUICK_READ_TIMEOUT = 0.5


class Services:
    """Lazily built clients for one app's settings."""

    def __init__(self, config: dict):
        self.config = config
        self._api_waiting: threading.BoundedSemaphore | None = None
        self._lock = threading.Lock()  # web threads may ask for the semaphore at the same moment

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.config["REDIS_URL"], socket_timeout=REDIS_TIMEOUT,
                              socket_connect_timeout=REDIS_TIMEOUT)

    @cached_property
    def quick_redis(self) -> Redis:
        return Redis.from_url(self.config["REDIS_URL"], socket_timeout=QUICK_READ_TIMEOUT,
                              socket_connect_timeout=QUICK_READ_TIMEOUT)

    @cached_property
    def storage(self) -> Storage:
        from .storage import create_storage

        return create_storage(self.config)

    @cached_property
    def mailer(self) -> Mailer:
        from .mail.backends import create_mailer

        return create_mailer(self.config)

    @cached_property
    def catalog_file(self) -> CatalogFile:
        from models.catalog import CatalogFile

        return CatalogFile(self.config["EASEL_CATALOG"])

    @property
    def api_waiting(self) -> threading.BoundedSemaphore:
        with self._lock:
            if self._api_waiting is None:
                self._api_waiting = threading.BoundedSemaphore(self.config["API_MAX_WAITING"])
            return self._api_waiting



def bind(app: Flask) -> None:
    """Attach the services to ``app`` (nothing is connected until first use)."""
    app.extensions["easel"] = Services(app.config)


def _services() -> Services:
    return current_app.extensions["easel"]


def redis() -> Redis:
    """The app's Redis client (queues, live progress, throttling state)."""
    return _services().redis


def quick_redis() -> Redis:
    """A client with a short timeout for the web's optional reads (live progress, queue position)."""
    return _services().quick_redis


def storage() -> Storage:
    """The app's image storage (``STORAGE``: local or S3)."""
    return _services().storage


def mailer() -> Mailer:
    """The app's mailer (``MAIL_BACKEND``)."""
    return _services().mailer


def catalog() -> dict[str, ModelEntry]:
    """The model catalog (``EASEL_CATALOG``), read again when its file changes; availability is checked on each use."""
    return _services().catalog_file.read()[0]


def loras() -> dict[str, LoraEntry]:
    """The catalog's LoRAs (``[loras.<name>]`` in ``EASEL_CATALOG``), read again when its file changes."""
    return _services().catalog_file.read()[1]


def api_waiting() -> threading.BoundedSemaphore:
    """This web process's places for API requests that wait for their images (``API_MAX_WAITING``)."""
    return _services().api_waiting


def default_model() -> str:
    """The site's default model: ``EASEL_MODEL`` if usable here, else the first usable catalog entry."""
    models = catalog()
    preferred = current_app.config["EASEL_MODEL"]
    if preferred in models and models[preferred].unavailable_reason() is None:
        return preferred
    return next((name for name, entry in models.items() if entry.unavailable_reason() is None), preferred)
