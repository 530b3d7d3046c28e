"""Refusals the dialects owe their clients (webapp/inputs.py, webapp/api/openai_images.py): each in the dialect's
own shape, with nothing written."""
from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from tests.support import api_token, bearer
from webapp.extensions import db
from webapp.tables import Generation


@pytest.fixture
def token(app, make_user) -> str:
    return api_token(app, make_user("ada@example.com"))


def generations(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Generation))


def test_openai_n_zero_is_refused_not_taken_as_one(app, client, token):
    for n in (0, -1, 11):
        response = client.post("/v1/images/generations", headers=bearer(token),
                               json={"prompt": "a fox", "n": n, "model": "easel-tiny"})
        assert response.status_code == 400, n
        error = response.get_json()["error"]
        assert error["param"] == "n" and error["type"] == "invalid_request_error"
    assert generations(app) == 0


@pytest.mark.parametrize("text", ["a fox\x00", "\x00", "a \ud800 fox", "\udfff"])
def test_nul_and_lone_surrogates_in_json_prompts_are_refused_by_every_dialect(app, client, token, text):
    basic = {"Authorization": "Basic " + base64.b64encode(f"ada@example.com:{token}".encode()).decode()}
    body = {"prompt": "a fox", "negative_prompt": text, "model": "easel-tiny"}
    v1 = client.post("/api/v1/generations", headers=bearer(token), json={**body, "prompt": text})
    assert v1.status_code == 400 and v1.content_type == "application/problem+json"
    assert "NUL" in v1.get_json()["detail"]
    openai = client.post("/v1/images/generations", headers=bearer(token), json=body)
    assert openai.status_code == 400 and openai.get_json()["error"]["type"] == "invalid_request_error"
    a1111 = client.post("/sdapi/v1/txt2img", headers=basic, json=body)
    assert a1111.status_code == 422 and "NUL" in a1111.get_json()["detail"]
    assert generations(app) == 0


def test_deep_json_and_non_finite_numbers_are_refused(app, client, token):
    deep = "[" * 50_000 + "]" * 50_000
    for raw in (deep, '{"prompt": "a fox", "steps": NaN}', '{"prompt": "a fox", "guidance": 1e999}',
                '{"prompt": "a fox", "seed": 18446744073709551616}'):
        response = client.post("/api/v1/generations", headers=bearer(token), data=raw,
                               content_type="application/json")
        assert response.status_code == 400, raw[:40]
        assert response.content_type == "application/problem+json"
    assert generations(app) == 0
