"""A group's storage quota and prompt classifier, and the model lists every API shows a group's member."""
from __future__ import annotations

import base64

import pytest

from tests.support import api_token, bearer, sign_in, submit, submit_ok
from webapp.groups.storage import SIZE_RULE, parse_size

pytestmark = pytest.mark.db

FULL = "Your group class-a may keep 10 kB of pictures, and its members keep 11 kB now."


def test_a_full_storage_quota_refuses_new_pictures_and_its_manager_sees_it(app, client, runner, make_user, make_image):
    ada = make_user("ada@example.com")
    make_user("teacher@example.com")
    assert runner.invoke(args=["groups", "create", "class-a", "--storage-quota", "10kB"]).exit_code == 0
    runner.invoke(args=["groups", "add", "class-a", "ada@example.com"])
    runner.invoke(args=["groups", "add", "class-a", "teacher@example.com", "--manager"])
    make_image(ada, file_bytes=6000)
    person = sign_in(app, "ada@example.com")
    submit_ok(person)  # 6 kB of 10 kB: room
    make_image(ada, file_bytes=5000)
    refused = submit(person)
    assert refused.status_code == 403 and FULL in refused.get_data(as_text=True)
    api = client.post("/api/v1/generations", json={"prompt": "a red circle"}, headers=bearer(api_token(app, ada)))
    assert api.status_code == 403 and api.get_json()["detail"].startswith(FULL)

    page = sign_in(app, "teacher@example.com").get("/groups/class-a").get_data(as_text=True)
    assert "keep 11 kB of 10 kB; it is full" in page and '<td class="storage-kept">11 kB</td>' in page
    assert "storage: 11 kB kept of 10 kB" in runner.invoke(args=["groups", "show", "class-a"]).output

    bad = runner.invoke(args=["groups", "set", "class-a", "--storage-quota", "lots"])
    assert bad.exit_code == 1 and SIZE_RULE in bad.output
    raised = runner.invoke(args=["groups", "set", "class-a", "--storage-quota", "1MB"])
    assert "storage_quota=1MB" in raised.output
    submit_ok(person)
    assert parse_size("1.5 GiB") == 1.5 * 2**30 and parse_size("2GB") == 2 * 10**9


def test_the_prompt_classifier_checks_the_prompts_of_the_groups_that_turn_it_on(app, client, runner, make_user):
    ada = make_user("ada@example.com")
    make_user("cy@example.com")
    runner.invoke(args=["groups", "create", "class-a", "--prompt-classifier", "on"])
    runner.invoke(args=["groups", "add", "class-a", "ada@example.com"])
    person = sign_in(app, "ada@example.com")
    refused = submit(person, prompt="fuck you all")  # the real classifier, from its wheel
    words = "Your group class-a checks prompts, and this one reads as offensive"
    assert refused.status_code == 400 and words in refused.get_data(as_text=True)
    submit_ok(person, prompt="a red circle on a blue background")
    api = client.post("/api/v1/generations", json={"prompt": "fuck you all"}, headers=bearer(api_token(app, ada)))
    assert api.status_code == 400 and words in api.get_json()["detail"]

    other = sign_in(app, "cy@example.com")
    submit_ok(other, prompt="fuck you all")  # the site's PROMPT_CLASSIFIER is off
    app.config["PROMPT_CLASSIFIER"] = True
    assert "This site checks prompts" in submit(other, prompt="fuck you all").get_data(as_text=True)
    runner.invoke(args=["groups", "set", "class-a", "--prompt-classifier", "off"])
    submit_ok(person, prompt="fuck you all")  # the group's off is the group's to say


def test_every_api_lists_only_the_models_a_members_group_allows(app, client, runner, make_user):
    ada = make_user("ada@example.com")
    runner.invoke(args=["groups", "create", "class-a", "--models", "easel-tiny", "--upscalers", "missing-upscaler"])
    runner.invoke(args=["groups", "add", "class-a", "ada@example.com"])
    token = api_token(app, ada)
    basic = {"Authorization": "Basic " + base64.b64encode(f"ada@example.com:{token}".encode()).decode()}
    assert [m["name"] for m in client.get("/api/v1/models", headers=bearer(token)).get_json()] == ["easel-tiny"]
    assert [u["name"] for u in client.get("/api/v1/upscalers", headers=bearer(token)).get_json()] == [
        "missing-upscaler"]
    assert [m["id"] for m in client.get("/v1/models", headers=bearer(token)).get_json()["data"]] == ["easel-tiny"]
    assert [m["title"] for m in client.get("/sdapi/v1/sd-models", headers=basic).get_json()] == ["easel-tiny"]
    assert client.get("/sdapi/v1/upscalers", headers=basic).get_json() == []  # its one upscaler cannot run here
    runner.invoke(args=["groups", "remove", "class-a", "ada@example.com"])
    assert "easel-tiny-slow" in [m["title"] for m in client.get("/sdapi/v1/sd-models", headers=basic).get_json()]
