"""A group's limits and model list replace the site's in the studio and the APIs; refusals name the group."""
from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import func, select

from tests.support import add_generation, api_token, bearer, sign_in, submit, submit_ok
from webapp.extensions import db
from webapp.tables import Generation

pytestmark = pytest.mark.db

DAILY = "Your group class-a allows 3 images a day; the next one at 00:00 UTC."


def count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Generation))


@pytest.fixture
def ada(app, runner, make_user) -> int:
    """Ada, in class-a: three images a day, the bundled model only, five at once."""
    user_id = make_user("ada@example.com")
    assert runner.invoke(args=["groups", "create", "class-a", "--daily-images", "3", "--max-active", "5",
                               "--models", "easel-tiny"]).exit_code == 0
    assert runner.invoke(args=["groups", "add", "class-a", "ada@example.com"]).exit_code == 0
    return user_id


def test_the_fourth_image_of_the_day_is_refused_in_the_studio(app, ada):
    add_generation(app, ada, status="succeeded")
    add_generation(app, ada, status="failed")  # failed ones do not count
    add_generation(app, ada, status="succeeded", age=timedelta(days=1, hours=1))  # yesterday's do not either
    person = sign_in(app, "ada@example.com")
    submit_ok(person)
    submit_ok(person)  # three today; the site's limit of 2 at once is the group's 5 here
    before = count(app)
    refused = submit(person)
    assert refused.status_code == 429 and DAILY in refused.get_data(as_text=True)
    assert count(app) == before


def test_the_group_limit_at_once_replaces_the_sites(app, runner, make_user):
    make_user("bo@example.com")
    runner.invoke(args=["groups", "create", "tight", "--max-active", "1"])
    runner.invoke(args=["groups", "add", "tight", "bo@example.com"])
    person = sign_in(app, "bo@example.com")
    submit_ok(person)
    refused = submit(person)  # the site allows 2
    assert refused.status_code == 429
    assert "Your group tight allows 1 generation waiting or running at once" in refused.get_data(as_text=True)


def test_a_model_outside_the_list_is_hidden_and_refused(app, ada):
    person = sign_in(app, "ada@example.com")
    html = person.get("/").get_data(as_text=True)
    assert 'value="easel-tiny"' in html and 'value="easel-tiny-slow"' not in html
    refused = submit(person, model="easel-tiny-slow")
    assert refused.status_code == 403
    assert ("Your group class-a cannot use the model easel-tiny-slow; the models you may use: easel-tiny."
            in refused.get_data(as_text=True))
    assert count(app) == 0


def test_someone_in_no_group_keeps_every_model(app, ada, make_user):
    make_user("cy@example.com")
    other = sign_in(app, "cy@example.com")
    assert 'value="easel-tiny-slow"' in other.get("/").get_data(as_text=True)
    submit_ok(other, model="easel-tiny-slow")


def test_the_api_refuses_with_the_groups_words(app, client, ada):
    auth = bearer(api_token(app, ada))
    outside = client.post("/api/v1/generations", json={"prompt": "a red circle", "model": "easel-tiny-slow"},
                          headers=auth)
    assert outside.status_code == 403 and "Your group class-a cannot use the model" in outside.get_json()["detail"]
    openai = client.post("/v1/images/generations", json={"prompt": "a red circle", "model": "easel-tiny-slow"},
                         headers=auth)
    assert openai.status_code == 403 and "class-a" in openai.get_json()["error"]["message"]
    assert count(app) == 0
    assert client.post("/api/v1/generations", json={"prompt": "a red circle", "num_images": 3},
                       headers=auth).status_code == 201
    over = client.post("/api/v1/generations", json={"prompt": "a red circle"}, headers=auth)
    assert over.status_code == 429 and over.get_json()["detail"] == DAILY
    assert 0 < int(over.headers["Retry-After"]) <= 86401


def test_most_generous_of_several_groups(app, runner, ada):
    runner.invoke(args=["groups", "create", "club", "--daily-images", "10", "--models", "easel-tiny-slow"])
    runner.invoke(args=["groups", "add", "club", "ada@example.com"])
    person = sign_in(app, "ada@example.com")
    html = person.get("/").get_data(as_text=True)
    assert 'value="easel-tiny"' in html and 'value="easel-tiny-slow"' in html
    for _ in range(2):
        submit_ok(person, num_images=4)
    refused = submit(person, num_images=4)
    assert refused.status_code == 429
    assert "Your group club allows 10 images a day (2 left today)" in refused.get_data(as_text=True)


def test_a_groups_weight_reaches_the_fair_queue(app, runner, redis_url, ada, make_user):
    from webapp.queue_weights import restore_queue_weights
    from webapp.queues import FAIR_WEIGHTS

    redis = Redis.from_url(redis_url)
    bo = make_user("bo@example.com", queue_weight=4.0)
    runner.invoke(args=["groups", "create", "fast", "--weight", "3"])
    for email in ("ada@example.com", "bo@example.com"):
        assert runner.invoke(args=["groups", "add", "fast", email]).exit_code == 0
    assert float(redis.hget(FAIR_WEIGHTS, ada)) == 3.0
    assert float(redis.hget(FAIR_WEIGHTS, bo)) == 4.0  # her own weight is more generous
    redis.delete(FAIR_WEIGHTS)
    with app.app_context():
        assert restore_queue_weights() == 2
    assert float(redis.hget(FAIR_WEIGHTS, ada)) == 3.0
    runner.invoke(args=["groups", "remove", "fast", "ada@example.com"])
    assert redis.hget(FAIR_WEIGHTS, ada) is None
