"""The in-page studio's JSON: submit (202, 400 per field, 429), cancel, my queue, my prompt history."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support import FIELDS, add_generation, csrf_token, sign_in, submit_ok
from webapp.extensions import db
from webapp.tables import Generation, User

pytestmark = pytest.mark.db

JSON = {"Accept": "application/json"}


def submit_json(client, **overrides):
    data = {**FIELDS, **{k: str(v) for k, v in overrides.items()}, "csrf_token": csrf_token(client, "/")}
    return client.post("/generations", data=data, headers=JSON)


def user_id(app, email: str = "ada@example.com") -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def test_json_submit_answers_202_with_state_and_parameters(app, signed_in):
    response = submit_json(signed_in, prompt="a green moon", seed=77, steps=9)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["api_url"] == f"/api/generations/{body['id']}" == response.headers["Location"]
    expected = {"prompt": "a green moon", "negative_prompt": "", "model": "easel-tiny", "width": 64, "height": 64,
                "steps": 9, "guidance": 5.0, "seed": 77, "num_images": 1, "style": "none"}
    assert {key: body["params"][key] for key in expected} == expected  # besides: start image, timelapse, LoRAs
    with app.app_context():
        assert db.session.get(Generation, body["id"]).prompt == "a green moon"


def test_plain_form_post_still_redirects(signed_in):
    assert submit_ok(signed_in)  # asserts the 303 to the progress page


def test_json_submit_errors_per_field(app, signed_in):
    response = submit_json(signed_in, prompt="", steps=99)
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert errors["prompt"] == ["Describe the picture you want."]
    assert errors["steps"] == ["Use 1 to 50 steps with Easel Tiny."]
    with app.app_context():
        assert db.session.scalar(select(Generation)) is None


def test_json_submit_over_the_limit_is_429_with_the_message(app, signed_in):
    app.config["MAX_QUEUED_PER_USER"] = 2
    for _ in range(2):
        assert submit_json(signed_in).status_code == 202
    response = submit_json(signed_in)
    assert response.status_code == 429
    assert "You already have 2 generations waiting in the queue" in response.get_json()["error"]


def test_json_submit_with_a_stale_csrf_token_is_json(signed_in):
    response = signed_in.post("/generations", data={**FIELDS, "csrf_token": "stale"}, headers=JSON)
    assert response.status_code == 400
    assert "This form has expired" in response.get_json()["error"]


def test_json_cancel_answers_the_state(signed_in):
    generation_id = submit_json(signed_in).get_json()["id"]
    response = signed_in.post(f"/generations/{generation_id}/cancel",
                              headers={**JSON, "X-CSRFToken": csrf_token(signed_in, "/")})
    assert response.status_code == 200
    assert response.get_json()["status"] == "canceled"


def test_my_queue_lists_only_my_active_generations_oldest_first(app, signed_in, make_user):
    other = make_user("bob@example.com")
    ada = user_id(app)
    old = add_generation(app, ada, "running", age=timedelta(minutes=2))
    new = submit_json(signed_in).get_json()["id"]
    add_generation(app, ada, "succeeded")
    add_generation(app, other, "queued")
    generations = signed_in.get("/api/queue").get_json()["generations"]
    assert [g["id"] for g in generations] == [old, new]
    assert generations[1]["queue_position"] == 1
    assert generations[1]["cancel_url"] == f"/generations/{new}/cancel"


def test_queued_eta_from_recent_runs(app, signed_in):
    from webapp.tables import utcnow

    ada = user_id(app)
    done = add_generation(app, ada, "succeeded")
    with app.app_context():
        row = db.session.get(Generation, done)
        row.started_at, row.finished_at = utcnow() - timedelta(seconds=10), utcnow()
        db.session.commit()
    submit_json(signed_in)
    [queued] = signed_in.get("/api/queue").get_json()["generations"]
    assert queued["eta_seconds"] == pytest.approx(10, abs=0.5)


def test_prompt_history_distinct_newest_first_filtered_and_mine_only(app, signed_in, make_user):
    bob = make_user("bob@example.com")
    for prompt, negative in [("a red fox", "blurry"), ("a blue whale", ""), ("a red fox", "dark"),
                             ("Redwood forest", "")]:
        submit_json(signed_in, prompt=prompt, negative_prompt=negative)
        with app.app_context():  # keep under the active limit
            for g in db.session.scalars(select(Generation).where(Generation.status == "queued")):
                g.status = "canceled"
            db.session.commit()
    bob_client = sign_in(app, "bob@example.com")
    add_generation(app, bob, "queued")  # bob's "a blue square"
    assert signed_in.get("/api/prompts").get_json()["prompts"] == ["Redwood forest", "a red fox", "a blue whale"]
    assert signed_in.get("/api/prompts?q=red").get_json()["prompts"] == ["Redwood forest", "a red fox"]
    assert signed_in.get("/api/prompts?q=a%20b").get_json()["prompts"] == ["a blue whale"]
    assert signed_in.get("/api/prompts?q=100%25").get_json()["prompts"] == []
    assert signed_in.get("/api/prompts?field=negative_prompt").get_json()["prompts"] == ["dark", "blurry"]
    assert signed_in.get("/api/prompts?field=password").status_code == 400
    assert bob_client.get("/api/prompts").get_json()["prompts"] == ["a blue square"]


def test_new_routes_need_sign_in(client):
    for path in ("/api/queue", "/api/prompts"):
        response = client.get(path)
        assert response.status_code == 404 and response.is_json


def test_result_images_carry_their_seed(app, signed_in, make_image):
    image_id = make_image(user_id(app))
    with app.app_context():
        generation_id = db.session.scalar(select(Generation.id))
    state = signed_in.get(f"/api/generations/{generation_id}").get_json()
    assert state["images"][0]["id"] == image_id and state["images"][0]["seed"] == 1
    assert state["params"]["seed"] == 1


def test_someone_elses_cancel_in_json_is_404_and_changes_nothing(app, signed_in, make_user):
    generation_id = submit_json(signed_in).get_json()["id"]
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    response = bob.post(f"/generations/{generation_id}/cancel",
                        headers={**JSON, "X-CSRFToken": csrf_token(bob, "/")})
    assert response.status_code == 404 and response.is_json
    assert bob.get("/api/queue").get_json()["generations"] == []
    with app.app_context():
        assert db.session.get(Generation, generation_id).status == "queued"
