"""The signed-out landing page: the newest published images when the site allows a public showcase, else the
examples the bundled model made at build time (``static/examples/``, written by ``make examples``)."""
from __future__ import annotations

import json
from pathlib import Path

from flask import abort, current_app, render_template
from sqlalchemy import select

from ..extensions import db
from ..image_files import serve_file
from ..tables import Image, User

SHOWCASE_SIZE = 12


def showcase_query():
    """Published, not hidden images of accounts in good standing, newest published first (as Explore)."""
    return (select(Image).join(User, Image.user_id == User.id)
            .where(Image.is_public.is_(True), Image.is_hidden.is_(False), Image.is_held.is_(False), User.is_banned.is_(False))
            .order_by(Image.published_at.desc().nulls_last(), Image.created_at.desc(), Image.id))


def examples() -> list[dict]:
    """The build-time examples: ``file`` (under static/examples/) and ``prompt``; none if never rendered."""
    path = Path(current_app.static_folder or "") / "examples" / "examples.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []


def landing_page():
    """The landing page with the showcase or the examples."""
    showcase = []
    if current_app.config.get("PUBLIC_SHOWCASE"):
        showcase = db.session.scalars(showcase_query().limit(SHOWCASE_SIZE)).all()
    return render_template("studio/landing.html", showcase=showcase, examples=[] if showcase else examples())


def showcase_thumbnail(image_id: str):
    """A showcased image's thumbnail, for anyone, only while ``PUBLIC_SHOWCASE`` is on (else 404)."""
    if not current_app.config.get("PUBLIC_SHOWCASE"):
        abort(404)
    image = db.session.scalar(showcase_query().where(Image.id == image_id))
    if image is None:
        abort(404)
    return serve_file(image.thumbnail_key, "image/webp")
