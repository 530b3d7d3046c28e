"""The image editor in a real Chromium (templates/studio/editor.html, static/js/editor.js): paint a mask with the
mouse, repaint, see the edit with the rest of the picture untouched; axe finds nothing serious on the editor."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from models.training.data import Scene, render
from tests.browser.test_accessibility import axe_violations
from tests.browser.test_studio import sign_in
from webapp.extensions import db
from webapp.tables import Image

pytestmark = pytest.mark.browser

SCENE = Scene(shape="square", colour="red", background="green", position="center", size="large")


def test_paint_a_mask_with_the_mouse_and_see_the_part_repainted(app, page, live_server, make_user, make_image,
                                                                 workers):
    ada = make_user("ada@example.com")
    image_id = make_image(ada, prompt="a large red square in the center, green background")
    with app.app_context():
        key = db.session.get(Image, image_id).storage_key
    start = render(SCENE)
    start.save(Path(app.config["MEDIA_DIR"]) / key, "PNG")  # the bundled model's own world
    workers.start()
    sign_in(page, live_server)
    page.goto(f"{live_server}/images/{image_id}")
    page.get_by_role("link", name="Edit: repaint part of it, or extend it").click()
    page.wait_for_url(f"**/images/{image_id}/edit")
    page.wait_for_load_state("load")
    assert axe_violations(page, live_server) == []

    page.get_by_role("button", name="Repaint the painted part").click()  # nothing painted: asked to paint first
    assert "Paint over the part" in page.locator("#editor-error").inner_text()
    box = page.locator("#editor-mask").bounding_box()
    page.get_by_label("Brush size").fill("60")
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4)
    page.mouse.down()
    for step in range(11):  # a stroke across the square's middle
        page.mouse.move(box["x"] + box["width"] * (0.4 + step * 0.02), box["y"] + box["height"] * (0.4 + step * 0.02))
    page.mouse.up()
    assert "The mask covers" in page.locator("#mask-status").inner_text()
    page.get_by_label("What the painted part should become").fill("a large blue square in the center, green background")
    page.get_by_label("Strength", exact=True).fill("1")
    page.get_by_role("button", name="Repaint the painted part").click()
    page.wait_for_url("**/generations/*")
    page.wait_for_selector("#images img", timeout=120000)
    page.locator("#images a").first.click()
    page.wait_for_selector("#lineage")
    assert "inpainted from" in page.locator("#lineage-source").inner_text()

    edited = page.request.get(page.url + "/file")
    result = np.asarray(PILImage.open(io.BytesIO(edited.body())).convert("RGB"), np.int16)
    before = np.asarray(start, np.int16)
    assert np.abs(result[:6] - before[:6]).max() == 0  # the top rows were not painted: untouched
    changed = np.abs(result - before).sum(axis=2) > 30
    assert changed[24:40, 24:40].mean() > 0.5  # the painted middle was repainted
