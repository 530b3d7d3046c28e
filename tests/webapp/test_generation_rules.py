"""webapp/generation_rules.py: the studio form and /api/v1 refuse the same bad inputs with the same words."""
from __future__ import annotations

import html

import pytest

from tests.support import api_token, bearer, submit

BAD_INPUTS = [
    pytest.param({"prompt": "   "}, "prompt", "Describe the picture you want.", id="blank prompt"),
    pytest.param({"prompt": "x" * 1001}, "prompt", "Keep the prompt under 1000 characters.", id="long prompt"),
    pytest.param({"negative_prompt": "x" * 1001}, "negative_prompt", "Keep it under 1000 characters.", id="long negative"),
    pytest.param({"model": "missing-model"}, "model", "Not installed is not available on this site", id="absent model"),
    pytest.param({"model": "no-such-model"}, "model", "Choose one of the listed models.", id="unknown model"),
    pytest.param({"width": 512, "height": 512}, "width", "Easel Tiny makes these sizes only: 64×64.", id="size"),
    pytest.param({"steps": 51}, "steps", "Use 1 to 50 steps with Easel Tiny.", id="too many steps"),
    pytest.param({"steps": 0}, "steps", "Use 1 to 50 steps with Easel Tiny.", id="no steps"),
    pytest.param({"guidance": 15.5}, "guidance", "Use a guidance from 0 to 15 with Easel Tiny.", id="guidance"),
    pytest.param({"guidance": -1}, "guidance", "Use a guidance from 0 to 15 with Easel Tiny.", id="negative guidance"),
    pytest.param({"num_images": 5}, "num_images", "Choose 1 to 4 images.", id="too many images"),
    pytest.param({"num_images": 0}, "num_images", "Choose 1 to 4 images.", id="no images"),
    pytest.param({"seed": 2**32}, "seed", "The seed is a whole number from 0 to 4294967295", id="seed too big"),
    pytest.param({"style": "cubism"}, "style", "Choose one of the styles", id="unknown style"),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD_INPUTS)
def test_form_and_api_refuse_alike(app, signed_in, bad, field, message):
    form = submit(signed_in, **bad)
    assert form.status_code == 400
    assert message in html.unescape(form.get_data(as_text=True))
    from webapp.extensions import db
    from webapp.tables import User

    with app.app_context():
        user_id = db.session.scalar(db.select(User.id))
    body = {"prompt": "a red circle", "model": "easel-tiny", "width": 64, "height": 64, "steps": 8, "guidance": 5.0,
            "num_images": 1, **bad}
    api = app.test_client().post("/api/v1/generations", json=body, headers=bearer(api_token(app, user_id)))
    assert api.status_code == 400
    assert any(message in text for text in api.get_json()["errors"][field]), api.get_json()
