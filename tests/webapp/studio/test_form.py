"""The studio form: defaults from the catalog, validation, limits. Nothing written on bad input."""
from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import func, select

from tests.support import sign_in, submit, submit_ok
from webapp.extensions import db
from webapp.queues import SERIALIZER
from webapp.tables import Generation

pytestmark = pytest.mark.db


def count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Generation))


def model_info(html: str) -> dict:
    import json
    import re

    return json.loads(re.search(r'<script type="application/json" id="model-info">(.*?)</script>', html, re.S).group(1))


def test_unavailable_models_show_server_paths_to_admins_only(app, client, make_user):
    make_user("ada@example.com")
    make_user("root@example.com", is_admin=True)
    person = sign_in(app, "ada@example.com")
    html = person.get("/").get_data(as_text=True)
    assert model_info(html)["missing-model"]["unavailable"] == "not installed on this server"
    assert "no-such-model" not in html
    refused = submit(person, model="missing-model").get_data(as_text=True)
    assert "not installed on this server" in refused and "no-such-model" not in refused
    admin = sign_in(app, "root@example.com")
    assert "models/no-such-model" in model_info(admin.get("/").get_data(as_text=True))["missing-model"]["unavailable"]


def test_studio_prefilled_from_catalog(signed_in):
    html = signed_in.get("/").get_data(as_text=True)
    assert 'name="steps"' in html and 'value="20"' in html  # easel-tiny's default steps
    assert "Not installed (unavailable)" in html
    assert "Pixel art" in html and "Watercolor" in html


@pytest.mark.parametrize(("field", "value", "message"), [
    ("prompt", "", "Describe the picture you want."),
    ("prompt", "x" * 1001, "Keep the prompt under 1000 characters."),
    ("negative_prompt", "x" * 1001, "Keep it under 1000 characters."),
    ("model", "no-such", "Choose one of the listed models."),
    ("model", "missing-model", "is not available on this site"),
    ("width", "512", "makes these sizes only: 64×64"),
    ("width", "abc", "Not a valid integer value."),
    ("steps", "0", "Use 1 to 50 steps"),
    ("steps", "51", "Use 1 to 50 steps"),
    ("guidance", "-1", "Use a guidance from 0 to 15"),
    ("guidance", "nan", "Use a number for the guidance"),
    ("guidance", "inf", "Use a number for the guidance"),
    ("guidance", "٧", "Use a number for the guidance"),  # Arabic-Indic seven: float() reads it as 7.0
    ("num_images", "5", "Choose 1 to 4 images."),
    ("seed", "-3", "The seed is a whole number"),
    ("seed", "99999999999", "The seed is a whole number"),
    ("seed", "²", "The seed is a whole number"),  # isdigit() but not int(): was a 500
    ("seed", "٣", "The seed is a whole number"),  # Arabic-Indic three: was stored as 3
    ("seed", "１２", "The seed is a whole number"),  # full-width twelve: was stored as 12
    ("style", "gothic", "Choose one of the styles"),
    ("style", "", "Choose one of the styles"),  # passed, then failed the worker with KeyError
    ("steps", "٣", "Not a valid integer value."),  # Arabic-Indic three: was run as 3 steps
    ("width", "６４", "Not a valid integer value."),  # full-width 64: was taken as 64
])
def test_invalid_input_400_nothing_written(app, signed_in, redis_url, field, value, message):
    response = submit(signed_in, **{field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count(app) == 0
    assert Redis.from_url(redis_url).llen("rq:queue:generate") == 0


def test_blank_seed_is_resolved_and_stored(app, signed_in):
    generation_id = submit_ok(signed_in, seed="")
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        assert 0 <= generation.seed < 2**32
        assert generation.status == "queued"


def test_enqueued_with_row_id_and_timeout(app, signed_in, redis_url):
    from rq.job import Job

    generation_id = submit_ok(signed_in)
    job = Job.fetch(generation_id, connection=Redis.from_url(redis_url), serializer=SERIALIZER)
    assert job.func_name == "jobs.generate.run"
    assert list(job.args) == [generation_id]  # JSON keeps a list
    assert job.timeout == 120  # from the catalog entry


def test_sign_in_required(client, app):
    response = client.post("/generations", data={"prompt": "x"})
    assert response.status_code in (302, 400)
    assert count(app) == 0


def test_remix_prefills_form(app, signed_in, make_user):
    from webapp.tables import Image, User

    with app.app_context():
        user = db.session.scalar(select(User))
        generation = Generation(user_id=user.id, status="succeeded", prompt="a blue star", negative_prompt="blurry",
                                model="easel-tiny", width=64, height=64, steps=12, guidance=3.5, seed=100,
                                num_images=2, style="watercolor")
        db.session.add(generation)
        db.session.flush()
        image = Image(generation_id=generation.id, user_id=user.id, index=1, storage_key="k", thumbnail_key="t",
                      width=64, height=64)
        db.session.add(image)
        db.session.commit()
        image_id = image.id
    html = signed_in.get(f"/?remix={image_id}").get_data(as_text=True)
    assert "a blue star</textarea>" in html and "blurry</textarea>" in html
    assert 'value="101"' in html  # the seed of image 1 of that generation
    assert 'value="12"' in html and 'value="3.5"' in html
    assert '<option selected value="watercolor">' in html or 'value="watercolor" selected' in html
