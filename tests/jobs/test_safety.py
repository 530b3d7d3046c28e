"""The safety check on pictures: the real detector on real generated pictures in a real worker, and the holding
path with a stand-in result at the detector's boundary (no flagged picture can be made here)."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from tests.support import ROOT, api_token, audit_entries, csrf_token, post, result_token, sign_in, submit_ok, wait_status
from webapp import safety
from webapp.extensions import db
from webapp.tables import Generation, GenerationStatus, Image

EXPOSED = [{"class": "FACE_FEMALE", "score": 0.88, "box": [1, 1, 20, 20]},
           {"class": "FEMALE_BREAST_EXPOSED", "score": 0.91, "box": [10, 20, 30, 30]}]


@pytest.fixture
def app_env(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This module's site checks pictures, as a new site does by default (the other tests turn it off)."""
    monkeypatch.setenv("SAFETY_CHECK", "1")
    return {**app_env, "SAFETY_CHECK": "1"}


def test_the_real_detector_checks_every_generated_picture_in_the_worker(app, signed_in, workers):
    client = signed_in
    generation_id = submit_ok(client, num_images=2)
    workers.start()
    final = wait_status(client, generation_id, {"succeeded", "failed"}, timeout=180)
    assert final["status"] == "succeeded", final
    with app.app_context():
        rows = db.session.scalars(select(Image).where(Image.generation_id == generation_id)).all()
        assert len(rows) == 2
        for row in rows:  # the tiny model's pictures: looked at (a list, not None), nothing exposed
            assert row.safety_labels is not None and not row.is_held and row.held_reason is None
            assert not any(label in safety.FLAGGED_LABELS and score >= 0.6 for label, score in row.safety_labels)
    # and the web process never loads the detector's libraries
    code = "import sys, wsgi; assert not {'onnxruntime', 'cv2', 'nudenet'} & set(sys.modules), sys.modules.keys()"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=os.environ, capture_output=True).returncode == 0


def store_one(app, user_id: int, color: str = "red") -> str:
    """Run the worker's storing step on one picture; returns the new image's id."""
    from jobs.generate import _store

    with app.app_context():
        generation = Generation(user_id=user_id, status=GenerationStatus.RUNNING, prompt="a beach", model="easel-tiny",
                                width=64, height=64, steps=2, guidance=5.0, seed=1, num_images=1)
        db.session.add(generation)
        db.session.commit()
        _store(generation, [PILImage.new("RGB", (64, 64), color)])
        assert db.session.get(Generation, generation.id).status == GenerationStatus.SUCCEEDED
        return db.session.scalar(select(Image.id).where(Image.generation_id == generation.id))


def image_row(app, image_id: str) -> Image:
    with app.app_context():
        image = db.session.get(Image, image_id)
        db.session.expunge(image)
        return image


@pytest.fixture
def school(app, runner, make_user):
    ids = {name: make_user(f"{name}@example.com") for name in ("ada", "teacher", "bo")}
    ids["root"] = make_user("root@example.com", is_admin=True)
    for args in (["create", "class-a"], ["add", "class-a", "teacher@example.com", "--manager"],
                 ["add", "class-a", "ada@example.com"], ["create", "class-b"],
                 ["add", "class-b", "bo@example.com", "--manager"]):
        assert runner.invoke(args=["groups", *args]).exit_code == 0
    return ids


def test_a_flagged_picture_is_held_until_released(app, school, monkeypatch):
    monkeypatch.setattr(safety, "detect", lambda picture: EXPOSED)
    held_id = store_one(app, school["ada"])
    held = image_row(app, held_id)
    assert held.is_held and "female breast exposed" in held.held_reason
    assert held.safety_labels == [["FEMALE_BREAST_EXPOSED", 0.91], ["FACE_FEMALE", 0.88]]

    ada = sign_in(app, "ada@example.com")
    detail = ada.get(f"/images/{held_id}").get_data(as_text=True)
    assert 'id="held-reason"' in detail and "female breast exposed" in detail and " held\" alt=" in detail
    assert "held for review" in ada.get("/gallery").get_data(as_text=True)
    shown = ada.get(f"/api/generations/{held.generation_id}").get_json()["images"][0]
    assert shown["held"] is True and "female breast exposed" in shown["held_reason"]  # the studio blurs it too
    refused = post(ada, f"/images/{held_id}/publish", public="1")
    assert refused.status_code == 303
    assert "cannot be published" in ada.get(refused.headers["Location"]).get_data(as_text=True)
    post(ada, "/gallery/bulk", "/gallery", action="publish", image_ids=held_id)
    assert not image_row(app, held_id).is_public
    assert app.test_client().get(f"/s/{result_token(app, held_id)}").status_code == 404  # no link works

    # the admins' queue shows it with the detector's labels and scores; others get 404
    admin = sign_in(app, "root@example.com")
    queue = admin.get("/admin/reports").get_data(as_text=True)
    assert f'id="held-{held_id}"' in queue and "FEMALE_BREAST_EXPOSED 0.91" in queue
    other_manager = sign_in(app, "bo@example.com")
    assert post(other_manager, f"/groups/class-a/images/{held_id}/release").status_code == 404
    assert post(other_manager, f"/admin/held/{held_id}", decision="release").status_code == 404
    assert image_row(app, held_id).is_held

    # the manager of the owner's group releases it (audited); the owner may publish it now
    teacher = sign_in(app, "teacher@example.com")
    assert "Release" in teacher.get("/groups/class-a").get_data(as_text=True)
    assert teacher.post(f"/groups/class-a/images/{held_id}/release").status_code == 400  # no CSRF token
    assert post(teacher, f"/groups/class-a/images/{held_id}/release").status_code == 303
    released = image_row(app, held_id)
    assert not released.is_held and released.safety_labels  # the findings stay on record
    assert ("image.release", "image", held_id, school["teacher"]) in audit_entries(app, "image.release")
    post(ada, f"/images/{held_id}/publish", public="1")
    assert image_row(app, held_id).is_public
    assert f'id="held-{held_id}"' not in admin.get("/admin/reports").get_data(as_text=True)

    # an admin releases another one from the queue (audited), or deletes it
    second, third = store_one(app, school["ada"], "blue"), store_one(app, school["ada"], "green")
    assert post(admin, f"/admin/held/{second}", "/admin/reports", decision="release").status_code == 303
    assert not image_row(app, second).is_held
    assert ("image.release", "image", second, school["root"]) in audit_entries(app, "image.release")
    assert post(admin, f"/admin/held/{third}", "/admin/reports", decision="delete").status_code == 303
    with app.app_context():
        assert db.session.get(Image, third) is None
    assert ("image.delete", "image", third, school["root"]) in audit_entries(app, "image.delete")


def test_a_detector_error_holds_the_picture_and_never_fails_the_generation(app, make_user, monkeypatch):
    def broken(picture):
        raise RuntimeError("onnxruntime: bad model")

    monkeypatch.setattr(safety, "detect", broken)
    image = image_row(app, store_one(app, make_user("ada@example.com")))
    assert image.is_held and image.held_reason == safety.ERROR_REASON and image.safety_labels is None
    ada = sign_in(app, "ada@example.com")
    assert "could not run" in ada.get(f"/images/{image.id}").get_data(as_text=True)
    token = csrf_token(ada, f"/images/{image.id}")
    ada.post(f"/images/{image.id}/publish", data={"csrf_token": token, "public": "1"})
    assert not image_row(app, image.id).is_public


def test_only_exposed_labels_at_the_threshold_hold_and_the_setting_turns_it_off(app, make_user, monkeypatch):
    assert not safety.verdict_of([{"class": "FEMALE_BREAST_EXPOSED", "score": 0.59}], 0.6).held
    assert not safety.verdict_of([{"class": "FEMALE_BREAST_COVERED", "score": 0.99},
                                  {"class": "FACE_MALE", "score": 0.99}], 0.6).held
    assert safety.verdict_of([{"class": "MALE_GENITALIA_EXPOSED", "score": 0.6}], 0.6).held
    monkeypatch.setattr(safety, "detect", lambda picture: EXPOSED)
    app.config["SAFETY_CHECK"] = False
    image = image_row(app, store_one(app, make_user()))
    assert not image.is_held and image.safety_labels is None


def test_an_upload_is_checked_when_uploaded_and_holds_every_picture_made_from_it(app, client, make_user, monkeypatch):
    from jobs.generate import _store
    from tests.webapp.studio.test_start_image import post_start
    from tests.webapp.test_uploads import encoded
    from webapp import lifecycle, services
    from webapp.tables import Upload

    ada = make_user("ada@example.com")
    monkeypatch.setattr(safety, "detect", lambda picture: EXPOSED)
    started = post_start(sign_in(app, "ada@example.com"),
                         files={"init_image": (encoded(PILImage.new("RGB", (64, 64), "red"), "PNG"), "a.png")})
    assert started.status_code == 303
    generation_id = started.headers["Location"].rsplit("/", 1)[1]
    monkeypatch.setattr(safety, "detect", lambda picture: [])  # the picture made finds nothing by itself
    with app.app_context():
        upload = db.session.get(Generation, generation_id).upload
        assert upload.is_held and "female breast exposed" in upload.held_reason
        assert upload.file_bytes == len(services.storage().open(upload.storage_key))
        assert lifecycle.start(generation_id)
        _store(db.session.get(Generation, generation_id), [PILImage.new("RGB", (64, 64), "blue")])
        made = db.session.scalar(select(Image).where(Image.generation_id == generation_id))
        assert made.is_held and made.held_reason.startswith("Made from an upload the safety check holds.")
        assert made.safety_labels == [] and made.file_bytes == sum(
            len(services.storage().open(key)) for key in made.file_keys)

    def broken(picture):
        raise RuntimeError("onnxruntime: bad model")

    monkeypatch.setattr(safety, "detect", broken)  # an API's upload: a detector error holds it, never a 500
    api = client.post("/api/v1/generations/from-image", content_type="multipart/form-data",
                      headers={"Authorization": f"Bearer {api_token(app, ada)}"},
                      data={"prompt": "a red circle", "init_image": (io.BytesIO(encoded(PILImage.new(
                          "RGB", (64, 64), "red"), "PNG")), "a.png")})
    assert api.status_code == 201, api.get_json()
    with app.app_context():
        held = db.session.get(Upload, db.session.get(Generation, api.get_json()["id"]).upload_id)
        assert held.is_held and held.held_reason == safety.ERROR_REASON
