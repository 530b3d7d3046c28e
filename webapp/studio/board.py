"""The studio's board: my newest pictures as cards (thumbnail, prompt, "Use seed", "Reuse settings", open, star)."""
from __future__ import annotations

from flask import url_for
from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from ..extensions import db
from ..generations import generation_params, image_json
from ..tables import Generation, Image

BOARD_IMAGES = 12
BOARD_BOX = 128  # the longest side of a card's picture, in CSS pixels
SMALL = 256  # pictures up to this size are shown from their PNG, pixelated, at a whole multiple


def shown_size(width: int, height: int, box: int) -> tuple[int, int, bool]:
    """How big to show a ``width`` × ``height`` picture in a ``box``: a whole multiple of a small one (pixelated,
    so its pixels stay sharp), else scaled down to fit. Returns (width, height, pixelated); studio-board.js agrees."""
    longest = max(width, height, 1)
    if longest <= box:
        factor = box // longest
        return width * factor, height * factor, True
    return max(1, round(width * box / longest)), max(1, round(height * box / longest)), False


def card(image: Image) -> dict:
    """What a board card shows of one of my images."""
    width, height, pixelated = shown_size(image.width, image.height, BOARD_BOX)
    small = max(image.width, image.height) <= SMALL
    shown = image_json(image)  # the generation serializer's view of one image
    params = generation_params(image.generation)
    return {
        "id": shown["id"],
        "prompt": shown.get("prompt", params["prompt"]),
        "seed": shown["seed"],
        "params": params,
        "src": shown["url"] if small else shown["thumbnail_url"],
        "width": width,
        "height": height,
        "pixelated": pixelated,
        "page_url": shown["page_url"],
        "star_url": url_for("gallery.star", image_id=image.id),
        "starred": image.is_starred,
    }


def board(user_id: int) -> list[dict]:
    """My newest images, newest first: the last finished generation's first, each generation's in their order."""
    images = db.session.scalars(
        select(Image).join(Image.generation).options(contains_eager(Image.generation))
        .where(Image.user_id == user_id)
        .order_by(Generation.finished_at.desc().nulls_last(), Generation.created_at.desc(), Generation.id, Image.index)
        .limit(BOARD_IMAGES)).all()
    return [card(image) for image in images]
