"""Wildcards and styles through the real routes: the site's and a person's lists, picks reproducible from the
seed, saved styles applied by name, and bad prompts refused with nothing queued (the pictures themselves:
``test_grids.py``, which shares one worker for all of them)."""
from __future__ import annotations

from base64 import b64encode

from sqlalchemy import func, select

from tests.support import api_token, audit_entries, bearer, post, queued_jobs, submit, submit_ok
from webapp.extensions import db
from webapp.prompting.wildcards import every_combination, pick
from webapp.tables import Generation, GenerationPrompts, User


def test_picks_come_from_the_seed() -> None:
    lists = {"shape": ["star", "circle", "square", "triangle"]}
    prompt = "a {red|blue|green|yellow} __shape__, {2$$white|black|orange} background"
    first = pick(prompt, [7, 8, 9, 10], lists)
    assert pick(prompt, [7, 8, 9, 10], lists) == first and pick(prompt, [9], lists) == first[2:3]
    assert len(set(first)) > 1
    assert every_combination("{a|b} {c|d|e}", lists, 6) == ["a c", "a d", "a e", "b c", "b d", "b e"]


def picks_of(app, generation_id: str) -> list[str] | None:
    with app.app_context():
        row = db.session.get(GenerationPrompts, generation_id)
        return None if row is None else row.prompts


def test_lists_bad_prompts_and_reproducible_picks(app, client, auth, make_user, redis_url) -> None:
    make_user("root@example.com", is_admin=True)
    make_user("ada@example.com")
    auth.login("root@example.com")
    saved = post(client, "/admin/wildcards", "/admin/wildcards", name="shape", values="star\ncircle\n\nsquare\n")
    assert saved.status_code == 303
    post(client, "/admin/wildcards", "/admin/wildcards", name="place", values="in the top left\nin the center")
    assert [entry[:2] for entry in audit_entries(app, "wildcard.save")] == [("wildcard.save", "wildcard")] * 2
    auth.logout()
    auth.login("ada@example.com")
    assert post(client, "/wildcards", "/wildcards", name="place", values="at the bottom").status_code == 303
    assert post(client, "/wildcards", "/wildcards", name="Bad Name!", values="x").status_code == 400
    page = client.get("/wildcards").get_data(as_text=True)
    assert "__place__" in page and "__shape__" in page

    # the same seed picks the same words; ada's own __place__ wins over the site's
    template = "a {red|blue} __shape__ __place__, white background"
    first = submit_ok(client, prompt=template, seed=11, num_images=3)
    again = submit_ok(client, prompt=template, seed=11, num_images=3)
    assert picks_of(app, first) == picks_of(app, again)
    assert all(p.endswith("at the bottom, white background") for p in picks_of(app, first))

    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Generation))
    refusals = {
        "a (red star, blue background": "is never closed",
        "a (red:2.5) star, blue background": "out of range",
        "a __colour__ star": "There is no wildcard list “colour”",
        "a {red|blue star": "never closed",
        "a {red|blue|green} {star|circle} here": "more than 4 combinations",
    }
    for prompt, says in refusals.items():
        response = submit(client, prompt=prompt, variants="all")
        assert response.status_code == 400 and says in response.get_data(as_text=True), prompt
    token = api_token(app, _id(app, "ada@example.com"))
    refused = client.post("/api/v1/generations", headers=bearer(token), json={"prompt": "a ((red) star"})
    assert refused.status_code == 400 and "never closed" in refused.get_data(as_text=True)
    refused = client.post("/api/v1/generations", headers=bearer(token), json={"prompt": "a __nope__", "variants": "all"})
    assert refused.status_code == 400 and "nope" in refused.get_data(as_text=True)
    # saved styles: ada's own, applied by name; an unknown one, alone or in A1111's list, is refused
    saved = post(client, "/styles", "/styles", name="glow", label="Glow", template="{prompt}, (glowing:1.2)",
                 negative_prompt="blurry", steps="5")
    assert saved.status_code == 303
    assert post(client, "/styles", "/styles", name="pixel-art", template="x").status_code == 400  # a bundled name
    refused = client.post("/api/v1/generations", headers=bearer(token), json={"prompt": "a star", "style": "nope"})
    assert refused.status_code == 400 and "Styles page" in refused.get_data(as_text=True)
    auth_header = {"Authorization": "Basic " + b64encode(f"ada@example.com:{token}".encode()).decode()}
    two = client.post("/sdapi/v1/txt2img", headers=auth_header, json={"prompt": "a star", "styles": ["glow", "x"]})
    assert two.status_code == 422 and "There is no style “x”" in two.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Generation)) == before
    assert queued_jobs(redis_url) == 2  # the two good ones only
    styled = client.post("/api/v1/generations", headers=bearer(token), json={"prompt": "a star", "style": "glow"})
    assert styled.status_code == 201 and styled.get_json()["steps"] == 5, "the style's suggested steps"


def _id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))

