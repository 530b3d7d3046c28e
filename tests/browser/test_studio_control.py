"""A person draws a scribble on the studio's canvas, sees what the model will see, and gets the shape where
they drew it (static/js/studio-control.js, webapp/studio/controls.py)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from models.training.data import shape_polygon
from models.training.evaluate_control import centroid, object_mask
from tests.support import wait_for
from webapp.extensions import db
from webapp.tables import Generation

from .test_studio import sign_in

pytestmark = pytest.mark.browser


def test_a_drawn_scribble_steers_the_picture(app, app_env, page, live_server, make_user, workers):
    make_user("ada@example.com")
    workers.start()
    sign_in(page, live_server)
    page.get_by_label("Prompt", exact=True).fill("a red star, blue background")
    page.get_by_label("Model", exact=True).select_option("easel-tiny")
    page.locator("summary").click()
    page.get_by_label("Steps", exact=True).fill("8")
    page.get_by_label("Seed", exact=True).fill("3")

    # A star in the bottom-right corner of the canvas, drawn with the mouse as a person would, the canvas scrolled
    # to the middle of the window (clear of the sticky Create bar) once the board and queue have filled in above it.
    page.wait_for_load_state("networkidle")
    page.locator("#control-canvas").evaluate("canvas => canvas.scrollIntoView({block: 'center', behavior: 'instant'})")
    box = page.locator("#control-canvas").bounding_box()
    scale = box["width"] / 64
    points = shape_polygon("star", 46, 46, 10)
    page.mouse.move(box["x"] + points[0][0] * scale, box["y"] + points[0][1] * scale)
    page.mouse.down()
    for x, y in [*points[1:], points[0]]:
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=4)
    page.mouse.up()
    page.wait_for_selector("#control-preview-box:not([hidden]) img[src^='blob:']")
    assert page.locator("#control option[value=missing-control]").count() == 0  # only usable, fitting models
    page.get_by_role("button", name="Create").click()

    def made() -> Generation | None:
        with app.app_context():
            found = db.session.scalar(select(Generation))
            return found if found is not None and found.status == "succeeded" else None

    generation = wait_for(made, timeout=120, message="the controlled generation to finish")
    assert generation.controls[0]["name"] == "easel-scribble"
    with app.app_context():
        key = db.session.get(Generation, generation.id).images[0].storage_key
    picture = PILImage.open(io.BytesIO((Path(app_env["MEDIA_DIR"]) / key).read_bytes()))
    found = centroid(object_mask(picture))
    assert found is not None and math.dist(found, (46, 46)) <= 8, found
    assert np.asarray(picture).shape == (64, 64, 3)
