"""The signed-out landing page: build-time examples, or with PUBLIC_SHOWCASE the newest published images,
whose thumbnails (only theirs) are served signed out while the setting is on."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from PIL import Image as PILImage

from tests.support import ROOT
from webapp.extensions import db
from webapp.tables import Image, User, utcnow

EXAMPLES = ROOT / "static" / "examples"


def publish(app, image_id: str, minutes_ago: int = 0, **fields) -> None:
    with app.app_context():
        image = db.session.get(Image, image_id)
        image.is_public, image.published_at = True, utcnow() - timedelta(minutes=minutes_ago)
        for key, value in fields.items():
            setattr(image, key, value)
        db.session.commit()


def test_committed_examples_are_small_pictures_with_their_prompts():
    listing = json.loads((EXAMPLES / "examples.json").read_text())
    assert len(listing) >= 4
    for item in listing:
        path = EXAMPLES / item["file"]
        assert path.stat().st_size < 20_000
        with PILImage.open(path) as picture:
            assert picture.size == (64, 64) and picture.format == "WEBP"
        assert item["prompt"]


def test_setting_read_from_the_environment(monkeypatch, app_env):
    from webapp import config

    assert config.from_environment()["PUBLIC_SHOWCASE"] is False
    monkeypatch.setenv("PUBLIC_SHOWCASE", "1")
    assert config.from_environment()["PUBLIC_SHOWCASE"] is True


@pytest.mark.db
def test_without_showcase_the_examples_and_no_public_thumbnails(app, client, make_user, make_image):
    image_id = make_image(make_user(), prompt="a secret sunset")
    publish(app, image_id)
    html = client.get("/").get_data(as_text=True)
    assert 'id="examples"' in html and "a secret sunset" not in html
    for item in json.loads((EXAMPLES / "examples.json").read_text()):
        assert f'alt="{item["prompt"]}"' in html
        response = client.get(f"/static/examples/{item['file']}")
        assert response.status_code == 200
        response.close()
    assert client.get(f"/showcase/{image_id}/thumbnail").status_code == 404


@pytest.mark.db
def test_showcase_newest_published_only_and_their_thumbnails_only(app, client, make_user, make_image):
    app.config["PUBLIC_SHOWCASE"] = True
    owner = make_user()
    old, new = make_image(owner, prompt="an old moon"), make_image(owner, prompt="a new sun")
    publish(app, old, minutes_ago=10)
    publish(app, new)
    private = make_image(owner, prompt="a private garden")
    hidden = make_image(owner, prompt="a hidden cave")
    publish(app, hidden, is_hidden=True)
    banned = make_user(is_banned=True)
    banned_image = make_image(banned, prompt="a banned tower")
    publish(app, banned_image)

    html = client.get("/").get_data(as_text=True)
    assert 'id="showcase"' in html and 'id="examples"' not in html
    assert html.index('alt="a new sun"') < html.index('alt="an old moon"')
    for prompt in ("a private garden", "a hidden cave", "a banned tower"):
        assert prompt not in html
    response = client.get(f"/showcase/{new}/thumbnail")
    assert response.status_code == 200 and response.mimetype == "image/webp"
    response.close()
    for image_id in (private, hidden, banned_image, "not-an-id"):
        assert client.get(f"/showcase/{image_id}/thumbnail").status_code == 404
    # The rest of an image stays private signed out.
    assert client.get(f"/images/{new}/file").status_code == 302
    app.config["PUBLIC_SHOWCASE"] = False
    assert client.get(f"/showcase/{new}/thumbnail").status_code == 404


@pytest.mark.db
def test_signed_in_still_get_the_studio(app, signed_in):
    with app.app_context():
        assert db.session.query(User).count() == 1
    assert 'id="studio-form"' in signed_in.get("/").get_data(as_text=True)
