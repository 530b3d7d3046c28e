"""Timelapses through the real worker: one frame per step plus the final image, served, mailed, deleted."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageSequence

from tests.jobs.test_generate import fetch
from tests.jobs.test_img2img import distance, submit_start
from tests.support import body, post, run_chores, sent_mail, sign_in, submit_ok, wait_status
from webapp.cleanup import delete_expired_images
from webapp.extensions import db
from webapp.tables import Image, User, utcnow


def frames_of(data: bytes) -> list[PILImage.Image]:
    with PILImage.open(io.BytesIO(data)) as animation:
        assert animation.format == "WEBP" and animation.is_animated
        return [frame.convert("RGB") for frame in ImageSequence.Iterator(animation)]


def test_timelapse_has_a_frame_per_step_and_the_final_image(app, signed_in, workers, make_user, app_env):
    app.config["MAX_ACTIVE_PER_USER"] = 3
    text = submit_ok(signed_in, steps=6, num_images=2, timelapse="y")
    plain = submit_ok(signed_in, steps=6)
    start = PILImage.new("RGB", (64, 64), (255, 255, 0))
    from_image = submit_start(signed_in, start, steps=6, strength=0.5, timelapse="y")
    workers.start()
    states = {gid: wait_status(signed_in, gid, {"succeeded", "failed"}, timeout=240) for gid in (text, plain, from_image)}
    assert all(s["status"] == "succeeded" for s in states.values()), states

    for generation_id, steps in ((text, 6), (from_image, 3)):  # image-to-image: int(6 * 0.5) steps
        for image in states[generation_id]["images"]:
            response = fetch(signed_in, f"/images/{image['id']}/timelapse")
            assert response.status_code == 200 and response.headers["Content-Type"] == "image/webp"
            frames = frames_of(response.data)
            assert len(frames) == steps + 1 and all(f.size == (64, 64) for f in frames)
            final = PILImage.open(io.BytesIO(fetch(signed_in, image["url"]).data)).convert("RGB")
            assert distance(frames[-1], final) < 6  # the last frame is the finished picture (lossy WebP)
            assert distance(frames[0], final) > distance(frames[-1], final)  # the first is still forming
            page = signed_in.get(f"/images/{image['id']}").get_data(as_text=True)
            assert 'id="play-timelapse"' in page  # played on demand, in the picture's place
            assert image["timelapse_url"] == f"/images/{image['id']}/timelapse"  # a try's play button uses it
    plain_image = states[plain]["images"][0]["id"]
    assert fetch(signed_in, f"/images/{plain_image}/timelapse").status_code == 404
    assert 'id="play-timelapse"' not in signed_in.get(f"/images/{plain_image}").get_data(as_text=True)
    assert states[plain]["images"][0]["timelapse_url"] is None

    first = states[text]["images"][0]["id"]
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    assert fetch(bob, f"/images/{first}/timelapse").status_code == 404  # private, like the image
    post(signed_in, f"/images/{first}/publish", token_page="/", public="1")
    assert fetch(bob, f"/images/{first}/timelapse").status_code == 200  # public: same rules as the image

    run_chores(app)
    mails = [m for m in sent_mail(app_env) if "ready" in m["Subject"]]
    with_timelapse = [m for m in mails if "timelapse" in body(m)]
    assert len(with_timelapse) == 2 and f"/images/{first}" in body(with_timelapse[0]) + body(with_timelapse[1])
    assert any("timelapse" not in body(m) for m in mails)  # the plain one does not mention it

    media = Path(app.config["MEDIA_DIR"])
    with app.app_context():
        rows = {row.id: row.timelapse_key for row in db.session.query(Image)}
    assert (media / rows[first]).is_file()
    post(signed_in, f"/images/{first}/delete", token_page="/")
    assert not (media / rows[first]).exists()
    second = states[text]["images"][1]["id"]
    assert (media / rows[second]).is_file()
    with app.app_context():
        delete_expired_images(now=utcnow() + timedelta(days=2))  # the orphan sweep knows timelapses are in use
    assert (media / rows[second]).is_file()
    with app.app_context():
        delete_expired_images(now=utcnow() + timedelta(days=app.config["RETENTION_DAYS"] + 1))
        assert db.session.query(User).count() == 2
    assert not (media / rows[second]).exists() and not any(media.rglob("*.timelapse.webp"))
