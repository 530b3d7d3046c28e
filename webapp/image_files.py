"""Image files and rows: serving after the access check, deleting files before rows."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Response, abort, current_app, redirect, send_file

from . import services
from .extensions import db
from .tables import Generation, Image, utcnow

log = logging.getLogger(__name__)
# Browsers may keep an image a few minutes, privately: a hidden, deleted or revoked image stops showing soon.
IMAGE_MAX_AGE = 300


def serve_file(key: str, content_type: str, download_name: str | None = None) -> Response:
    """Stream a stored file (local) or redirect to a short-lived presigned URL (S3)."""
    storage = services.storage()
    url = storage.download_url(key, content_type, download_name)
    if url:
        response = redirect(url, 302)
        response.headers["Cache-Control"] = "private, no-store"
        return response
    path = storage.local_path(key)
    if path is None or not path.is_file():
        abort(404)
    response = send_file(path, mimetype=content_type, as_attachment=download_name is not None,
                         download_name=download_name, conditional=True, max_age=IMAGE_MAX_AGE)
    response.headers["Cache-Control"] = f"private, max-age={IMAGE_MAX_AGE}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def delete_image(image: Image) -> None:
    """Remove an image's files, then its row (and its generation's row when it was the last image)."""
    storage = services.storage()
    for key in image.file_keys:
        storage.delete(key)
    generation = image.generation
    db.session.delete(image)  # its reports go with it (ON DELETE CASCADE, enforced on SQLite too)
    db.session.flush()
    if generation is not None and not generation.images:
        storage.delete_prefix(f"users/{generation.user_id}/{generation.id}/")
        db.session.delete(generation)
    db.session.commit()


EXPIRY_SHOWN_WITHIN = timedelta(days=7)  # "kept until …" shows only in an image's last week


def expires_at(image: Image) -> datetime | None:
    """When cleanup will delete this image (None when starred, or when the site keeps all: RETENTION_DAYS=0)."""
    days = current_app.config["RETENTION_DAYS"]
    if image.is_starred or days <= 0:
        return None
    return image.created_at + timedelta(days=days)


def expiry_notice(image: Image, now: datetime | None = None) -> datetime | None:
    """The date shown as "kept until …": only within the last week before cleanup deletes the image, else None."""
    until = expires_at(image)
    if until is None or until - (now or utcnow()) > EXPIRY_SHOWN_WITHIN:
        return None
    return until


def download_name(image: Image, generation: Generation) -> str:
    """A file name for downloads, made from ids and the seed (never from the prompt)."""
    return f"easel-{generation.seed + image.index}-{image.id[:8]}.png"
