"""Variations and upscales through the real worker: new generations from an image, with the parent recorded."""
from __future__ import annotations

import io
import json

from PIL import Image as PILImage

from tests.jobs.test_generate import fetch
from tests.support import post, queued_jobs, sign_in, submit_ok, wait_status
from webapp.extensions import db
from webapp.tables import Generation


def generation_from(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].startswith("/generations/")
    return response.headers["Location"].rsplit("/", 1)[1]


def test_variations_and_upscale_land_in_the_gallery_with_their_parent(app, signed_in, workers, app_env):
    app.config["MAX_ACTIVE_PER_USER"] = 3
    first = submit_ok(signed_in, steps=8)
    workers.start()
    source = wait_status(signed_in, first, {"succeeded", "failed"}, timeout=240)
    assert source["status"] == "succeeded", source
    parent_id = source["images"][0]["id"]
    page = signed_in.get(f"/images/{parent_id}").get_data(as_text=True)
    assert 'id="more-like-this"' in page and 'id="upscale-4"' in page and 'id="use-as-start"' in page
    assert "Not installed x4 (unavailable:" in page and "disabled" in page

    variation = generation_from(post(signed_in, f"/images/{parent_id}/variations", token_page="/",
                                     num_images="2", strength="0.35"))
    upscaled = generation_from(post(signed_in, f"/images/{parent_id}/upscale", token_page="/",
                                    factor="4", upscaler="lanczos"))
    assert state_of(signed_in, upscaled)["total_steps"] == 1
    assert "upscale ×4 with lanczos" in signed_in.get(f"/generations/{upscaled}").get_data(as_text=True)
    variation_state = wait_status(signed_in, variation, {"succeeded", "failed"}, timeout=240)
    upscale_state = wait_status(signed_in, upscaled, {"succeeded", "failed"}, timeout=240)
    assert variation_state["status"] == upscale_state["status"] == "succeeded", (variation_state, upscale_state)

    assert len(variation_state["images"]) == 2
    assert variation_state["total_steps"] == int(8 * 0.35)
    with app.app_context():
        generation = db.session.get(Generation, variation)
        parent_generation = db.session.get(Generation, first)
        assert (generation.source, generation.parent_image_id, generation.prompt, generation.steps) == (
            "variation", parent_id, parent_generation.prompt, parent_generation.steps)
        assert generation.seed != parent_generation.seed
    assert (upscale_state["width"], upscale_state["height"]) == (256, 256)
    big = upscale_state["images"][0]
    assert (big["width"], big["height"]) == (256, 256)
    png = PILImage.open(io.BytesIO(fetch(signed_in, big["url"]).data))
    assert png.size == (256, 256)
    params = json.loads(png.text["easel"])
    assert (params["source"], params["upscaler"], params["upscale_factor"]) == ("upscale", "lanczos", 4)
    assert params["lineage"] == [{"image_id": parent_id, "source": "upscale"}]

    gallery = signed_in.get("/gallery").get_data(as_text=True)
    assert all(image["id"] in gallery for image in variation_state["images"] + [big])
    parent_page = signed_in.get(f"/images/{parent_id}").get_data(as_text=True)
    assert all(f'data-image-id="{image["id"]}"' in parent_page for image in variation_state["images"] + [big])
    child_page = signed_in.get(f"/images/{big['id']}").get_data(as_text=True)
    assert 'id="parent-link"' in child_page and f"/images/{parent_id}" in child_page and "an upscale of" in child_page
    assert queued_jobs(app_env["REDIS_URL"]) == 0


def state_of(client, generation_id: str) -> dict:
    return client.get(f"/api/generations/{generation_id}").get_json()


def test_private_images_unavailable_upscalers_and_bad_fields_queue_nothing(app, signed_in, make_user, make_image,
                                                                           app_env):
    bob = make_user("bob@example.com")
    private = make_image(bob)
    for path, fields in ((f"/images/{private}/variations", {"num_images": "1", "strength": "0.3"}),
                         (f"/images/{private}/upscale", {"factor": "2", "upscaler": "lanczos"})):
        assert post(signed_in, path, token_page="/", **fields).status_code == 404
    bob_client = sign_in(app, "bob@example.com")
    for fields in ({"factor": "3", "upscaler": "lanczos"}, {"factor": "4", "upscaler": "missing-upscaler"},
                   {"factor": "4", "upscaler": "no-such"}):
        response = post(bob_client, f"/images/{private}/upscale", token_page="/", **fields)
        assert response.status_code == 303 and response.headers["Location"] == f"/images/{private}"
    response = post(bob_client, f"/images/{private}/variations", token_page="/", num_images="9", strength="0.3")
    assert response.headers["Location"] == f"/images/{private}"
    assert "Choose 1 to 4 images." in bob_client.get(f"/images/{private}").get_data(as_text=True)
    assert queued_jobs(app_env["REDIS_URL"]) == 0
    with app.app_context():
        assert db.session.query(Generation).count() == 1


def test_derived_generations_obey_limits_and_blocked_terms(app, signed_in, make_image, app_env):
    from webapp.tables import BlockedTerm, User

    with app.app_context():
        ada = db.session.query(User).filter_by(email="ada@example.com").one().id
    own = make_image(ada, prompt="a red circle")
    app.config["MAX_QUEUED_PER_USER"] = 1
    submit_ok(signed_in)  # one queued: the limit is reached
    for path, fields in ((f"/images/{own}/variations", {"num_images": "1", "strength": "0.5"}),
                         (f"/images/{own}/upscale", {"factor": "2", "upscaler": "lanczos"})):
        response = post(signed_in, path, token_page="/", **fields)
        assert response.headers["Location"] == f"/images/{own}"
        assert "waiting in the queue" in signed_in.get(f"/images/{own}").get_data(as_text=True)
    app.config["MAX_QUEUED_PER_USER"] = 5
    with app.app_context():
        db.session.add(BlockedTerm(term="circle"))
        db.session.commit()
    post(signed_in, f"/images/{own}/variations", token_page="/", num_images="1", strength="0.5")
    assert "does not allow" in signed_in.get(f"/images/{own}").get_data(as_text=True)
    assert queued_jobs(app_env["REDIS_URL"]) == 1
