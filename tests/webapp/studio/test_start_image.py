"""Starting images on POST /generations: uploads checked before anything is written, ids checked for access."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from tests.support import FIELDS, csrf_token, queued_jobs, sign_in
from tests.webapp.test_uploads import BAD, encoded
from webapp.extensions import db
from webapp.tables import Generation, Upload


def post_start(client, files: dict | None = None, **fields):
    data = {**FIELDS, **{k: str(v) for k, v in fields.items()}, "csrf_token": csrf_token(client, "/")}
    for name, (payload, filename) in (files or {}).items():
        data[name] = (io.BytesIO(payload), filename)
    return client.post("/generations", data=data, content_type="multipart/form-data")


def counts(app) -> tuple[int, int, list[Path]]:
    with app.app_context():
        generations = db.session.scalar(select(func.count()).select_from(Generation))
        uploads = db.session.scalar(select(func.count()).select_from(Upload))
    media = Path(app.config["MEDIA_DIR"])
    return generations, uploads, sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_upload_gets_a_message_and_nothing_is_written(app, signed_in, app_env, name):
    data, words = BAD[name]
    response = post_start(signed_in, files={"init_image": (data, "picture.png")})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="init_image"' in page and "is-invalid" in page and words in page
    assert counts(app) == (0, 0, [])
    assert queued_jobs(app_env["REDIS_URL"]) == 0


def test_a_good_upload_is_re_encoded_at_the_model_size(app, signed_in, app_env):
    studio = signed_in.get("/").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in studio and 'name="init_image"' in studio and 'name="timelapse"' in studio
    photo = PILImage.new("RGB", (300, 150), "green")
    response = post_start(signed_in, files={"init_image": (encoded(photo, "JPEG"), "holiday.jpg")},
                          strength="0.5", resize_mode="fit", timelapse="y")
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    generation_id = response.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        upload = db.session.get(Upload, generation.upload_id)
        assert (generation.source, generation.strength, generation.resize_mode, generation.timelapse) == (
            "upload", 0.5, "fit", True)
        assert generation.init_image_key == upload.storage_key == f"users/{generation.user_id}/uploads/{upload.id}.png"
        assert generation.total_steps == 4  # int(8 * 0.5)
    with PILImage.open(Path(app.config["MEDIA_DIR"]) / upload.storage_key) as stored:
        assert (stored.format, stored.size) == ("PNG", (64, 64))
        assert stored.convert("RGB").getpixel((32, 2)) == (0, 0, 0)  # fitted: bars above the wide photo
    assert queued_jobs(app_env["REDIS_URL"]) == 1


def test_another_persons_private_image_is_a_404_and_nothing_is_queued(app, signed_in, make_user, make_image, app_env):
    bob = make_user("bob@example.com")
    private = make_image(bob)
    public = make_image(bob, is_public=True)
    hidden = make_image(bob, is_public=True, is_hidden=True)
    for image_id in (private, hidden, "not-an-id"):
        assert post_start(signed_in, init_image_id=image_id).status_code == 404
        assert signed_in.get(f"/?init_image_id={image_id}").status_code == 404
    assert counts(app)[:2] == (2 + 1, 0)  # only make_image's own generations
    assert queued_jobs(app_env["REDIS_URL"]) == 0
    page = signed_in.get(f"/?init_image_id={public}").get_data(as_text=True)
    assert 'id="start-thumb"' in page and public in page
    response = post_start(signed_in, init_image_id=public, strength="0.3")
    assert response.status_code == 303
    with app.app_context():
        generation = db.session.get(Generation, response.headers["Location"].rsplit("/", 1)[1])
        assert (generation.source, generation.parent_image_id, generation.strength) == ("image", public, 0.3)


def test_strength_limits_and_one_start_only(app, signed_in, make_image):
    own = db_user_image(app, make_image)
    page = post_start(signed_in, init_image_id=own, strength="1.5").get_data(as_text=True)
    assert "Use a strength from 0.05 to 1" in page
    page = post_start(signed_in, init_image_id=own, strength="0.1", steps="8").get_data(as_text=True)
    assert "changes in no step" in page
    both = post_start(signed_in, files={"init_image": (encoded(PILImage.new("RGB", (8, 8)), "PNG"), "a.png")},
                      init_image_id=own)
    assert both.status_code == 400 and "not both" in both.get_data(as_text=True)
    assert counts(app)[1] == 0


def db_user_image(app, make_image) -> str:
    from webapp.tables import User

    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "ada@example.com"))
    return make_image(user_id)


def test_someone_elses_upload_id_is_a_404(app, signed_in, make_user):
    bob = make_user("bob@example.com")
    bob_client = sign_in(app, "bob@example.com")
    response = post_start(bob_client, files={"init_image": (encoded(PILImage.new("RGB", (64, 64)), "PNG"), "b.png")})
    assert response.status_code == 303
    with app.app_context():
        upload_id = db.session.scalar(select(Upload.id).where(Upload.user_id == bob))
    assert post_start(signed_in, upload_id=upload_id).status_code == 404
    assert signed_in.get(f"/uploads/{upload_id}.png").status_code == 404
    own = bob_client.get(f"/uploads/{upload_id}.png")
    own.close()
    assert own.headers["Content-Type"] == "image/png"


def test_remix_keeps_the_starting_image(app, signed_in, make_image):
    own = db_user_image(app, make_image)
    response = post_start(signed_in, files={"init_image": (encoded(PILImage.new("RGB", (64, 64)), "PNG"), "a.png")},
                          strength="0.4")
    with app.app_context():
        generation = db.session.get(Generation, response.headers["Location"].rsplit("/", 1)[1])
        user_id, upload_id = generation.user_id, generation.upload_id
    from_upload = make_image(user_id, generation={"source": "upload", "upload_id": upload_id, "strength": 0.4,
                                                  "init_image_key": "x"})
    from_image = make_image(user_id, generation={"source": "image", "parent_image_id": own, "strength": 0.7,
                                                 "init_image_key": "x"})
    page = signed_in.get(f"/?remix={from_upload}").get_data(as_text=True)
    assert f'value="{upload_id}"' in page and 'id="start-thumb"' in page and 'value="0.4"' in page
    page = signed_in.get(f"/?remix={from_image}").get_data(as_text=True)
    assert f'name="init_image_id" type="hidden" value="{own}"' in page and 'value="0.7"' in page
    response = post_start(signed_in, upload_id=upload_id, strength="0.4")
    assert response.status_code == 303
    with app.app_context():
        again = db.session.get(Generation, response.headers["Location"].rsplit("/", 1)[1])
        assert (again.source, again.upload_id) == ("upload", upload_id)
