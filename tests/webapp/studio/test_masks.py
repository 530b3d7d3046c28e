"""Masks on POST /generations (webapp/editing.py, webapp/studio/masks.py): every bad mask refused with nothing
written or queued, another person's picture or mask a 404, a good mask stored at the generation's size."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image as PILImage

from tests.support import queued_jobs
from tests.webapp.studio.test_start_image import counts, post_start
from tests.webapp.test_uploads import encoded
from webapp.extensions import db
from webapp.tables import Generation

START = encoded(PILImage.new("RGB", (128, 64), "green"), "PNG")


def mask(box: tuple[int, int, int, int] | None, size: tuple[int, int] = (128, 64)) -> bytes:
    picture = PILImage.new("L", size, 0)
    if box:
        picture.paste(255, box)
    return encoded(picture, "PNG")


@pytest.mark.parametrize(("files", "fields", "words"), [
    ({"mask": (mask(None), "m.png")}, {}, "marks nothing to repaint"),
    ({"mask": (mask((0, 0, 30, 64)), "m.png")}, {}, "marks nothing to repaint"),  # only in the part cropped off
    ({"mask": (b"not a picture", "m.png")}, {}, "not a PNG, JPEG or WebP"),
    ({"mask": (b"", "m.png")}, {}, "empty"),
    ({"mask": (mask((40, 0, 90, 64)), "m.png")}, {"mask_blur": "65"}, "mask blur from 0 to 64"),
    ({"mask": (mask((40, 0, 90, 64)), "m.png")}, {"inpaint_area": "elsewhere"}, "Not a valid choice"),
], ids=["empty", "cropped-off", "not-an-image", "no-bytes", "blur", "area"])
def test_a_bad_mask_is_refused_and_nothing_is_written(app, signed_in, app_env, files, fields, words):
    response = post_start(signed_in, files={"init_image": (START, "start.png"), **files}, **fields)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    assert counts(app) == (0, 0, [])
    assert queued_jobs(app_env["REDIS_URL"]) == 0


def test_a_mask_needs_a_start_and_another_persons_picture_or_mask_is_404(app, signed_in, app_env, make_user,
                                                                          make_image):
    assert 'id="hires-box" hidden' in signed_in.get("/").get_data(as_text=True)  # 64×64 only: no hires fix offered
    alone = post_start(signed_in, files={"mask": (mask((0, 0, 8, 8)), "m.png")})
    assert alone.status_code == 400 and "choose one too" in alone.get_data(as_text=True)
    other = make_user("other@example.com")
    private = make_image(other)
    theirs = post_start(signed_in, files={"mask": (mask((0, 0, 8, 8)), "m.png")}, init_image_id=private)
    assert theirs.status_code == 404
    with app.app_context():
        their_generation = db.session.get(Generation, db.session.scalar(
            db.select(Generation.id).where(Generation.user_id == other)))
    reused = post_start(signed_in, files={"init_image": (START, "start.png")}, mask_from=their_generation.id)
    assert reused.status_code == 404
    assert counts(app)[:2] == (1, 0) and queued_jobs(app_env["REDIS_URL"]) == 0  # only the other's own generation


def test_a_good_mask_is_stored_with_its_generation_at_its_size(app, signed_in, app_env):
    response = post_start(signed_in, files={"init_image": (START, "start.png"),
                                            "mask": (mask((64, 0, 128, 32), (256, 128)), "m.png")},
                          strength="0.9", mask_blur="0", inpaint_area="masked")
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    generation_id = response.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        edit = generation.edit
        assert (generation.source, edit.kind, edit.mask_blur, edit.inpaint_area) == ("upload", "inpaint", 0, "masked")
        assert edit.mask_key == f"users/{generation.user_id}/{generation.id}/mask.png"
    with PILImage.open(Path(app.config["MEDIA_DIR"]) / edit.mask_key) as stored:
        # stretched to the 128x64 start (x 32..64, y 0..16), then its middle cropped to 64x64 like the start's
        assert stored.size == (64, 64)
        assert stored.getpixel((20, 8)) == 255 and stored.getpixel((40, 8)) == 0 and stored.getpixel((20, 30)) == 0
    assert queued_jobs(app_env["REDIS_URL"]) == 1
