"""Emailed links: the token is the only credential, so every route checks it first."""
from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template, request

from ..extensions import csrf, db
from ..image_files import download_name, serve_file
from ..tables import Image
from .tokens import BadLink, image_for_result_token, result_link_seconds, user_for_unsubscribe_token

bp = Blueprint("links", __name__)


def private_link(response: Response) -> Response:
    # Tokens sit in the URL: keep them out of Referer headers, caches and search engines.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def bad_link(kind: str, expired: bool, status: int = 404) -> Response:
    """The clear page for a link that no longer works (nothing is shown, nothing changes)."""
    return private_link(make_response(render_template("links/bad_link.html", kind=kind, expired=expired), status))


def _image_or_bad_link(token: str) -> Image | Response:
    try:
        return image_for_result_token(token)
    except BadLink as exc:
        return bad_link("result", exc.expired)


@bp.get("/s/<token>")
def result(token: str):
    """The emailed result: the picture and its prompt, no sign-in needed."""
    image = _image_or_bad_link(token)
    if not isinstance(image, Image):
        return image
    response = make_response(render_template("links/result.html", image=image, generation=image.generation,
                                             token=token, link_days=result_link_seconds() // 86400))
    return private_link(response)


@bp.get("/s/<token>/file")
def result_file(token: str):
    """The PNG behind a result link (``?download=1`` for an attachment)."""
    image = _image_or_bad_link(token)
    if not isinstance(image, Image):
        return image
    name = download_name(image, image.generation) if request.args.get("download") else None
    return private_link(serve_file(image.storage_key, "image/png", name))


@bp.get("/s/<token>/thumbnail")
def result_thumbnail(token: str):
    """The thumbnail behind a result link (shown in the email)."""
    image = _image_or_bad_link(token)
    if not isinstance(image, Image):
        return image
    return private_link(serve_file(image.thumbnail_key, "image/webp"))


@bp.route("/email/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # mail clients' one-click unsubscribe (RFC 8058) POSTs without a form; the token is the proof
def unsubscribe(token: str):
    """GET asks (mail scanners fetch links, so a GET changes nothing); a POST turns the notification emails off.

    The POST is the confirm button's, or a mail client's RFC 8058 one-click (``List-Unsubscribe=One-Click``).
    The page never shows the account's email: whoever holds the link may not be its owner.
    """
    try:
        user = user_for_unsubscribe_token(token)
    except BadLink as exc:
        return bad_link("unsubscribe", exc.expired)
    if request.method == "GET":
        page = render_template("links/unsubscribe.html", token=token, already_off=not user.notify_by_email)
        return private_link(make_response(page))
    if user.notify_by_email:
        user.notify_by_email = False
        db.session.commit()
    return private_link(make_response(render_template("links/unsubscribed.html")))
