"""Publishing, Explore (only published, not hidden images), reports, and the expiry shown to owners."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.support import post, sign_in
from webapp.extensions import db
from webapp.tables import Image, Report, utcnow


def explore_prompts(client, page: int = 1) -> list[str]:
    """The prompts on an Explore page, in order."""
    html = client.get(f"/explore?page={page}").get_data(as_text=True)
    return re.findall(r'<p class="card-text small text-truncate mb-0">(.*?)</p>', html)


@pytest.mark.db
def test_publish_unpublish_and_explore_visibility(app, make_user, make_image):
    ada = make_user("ada@example.com", display_name="Ada L.")
    make_user("bob@example.com")
    fox = make_image(ada, prompt="a published fox")
    owl = make_image(ada, prompt="a private owl")
    cat = make_image(ada, prompt="a hidden cat", is_public=True, is_hidden=True, published_at=utcnow())
    owner, viewer = sign_in(app, "ada@example.com"), sign_in(app, "bob@example.com")

    assert post(owner, f"/images/{fox}/publish", public="1").status_code == 303
    html = viewer.get("/explore").get_data(as_text=True)
    assert explore_prompts(viewer) == ["a published fox"]
    assert "by Ada L." in html
    assert viewer.get(f"/images/{fox}").status_code == 200
    assert viewer.get(f"/images/{owl}").status_code == 404  # unpublished
    assert viewer.get(f"/images/{cat}").status_code == 404  # hidden by an admin
    assert viewer.get(f"/images/{cat}/thumbnail").status_code == 404

    # The owner cannot publish a hidden image again.
    post(owner, f"/images/{cat}/publish", public="0")  # unpublish
    response = post(owner, f"/images/{cat}/publish", public="1")
    assert "An admin has hidden this image" in owner.get(response.headers["Location"]).get_data(as_text=True)

    assert post(owner, f"/images/{fox}/publish", public="0").status_code == 303  # unpublish
    assert explore_prompts(viewer) == []
    assert "Nobody has published an image yet" in viewer.get("/explore").get_data(as_text=True)
    assert viewer.get(f"/images/{fox}").status_code == 404
    assert app.test_client().get("/explore").status_code == 302  # signed-in people only


def test_explore_never_shows_a_piece_of_the_email(app, make_user, make_image):
    grace = make_user("grace.hopper.private@example.com")  # no display name
    make_image(grace, prompt="a moth in a relay", is_public=True, published_at=utcnow())
    make_user("bob@example.com")
    html = sign_in(app, "bob@example.com").get("/explore").get_data(as_text=True)
    assert "a moth in a relay" in html and "by Anonymous artist" in html
    assert "grace.hopper.private" not in html
    account = sign_in(app, "grace.hopper.private@example.com").get("/auth/account").get_data(as_text=True)
    assert "left blank, they show “Anonymous artist”" in account and "email name" not in account  # one wording


def test_explore_is_newest_first_and_paginated(app, make_user, make_image):
    ada = make_user("ada@example.com")
    start = utcnow() - timedelta(hours=1)
    for i in range(25):
        make_image(ada, prompt=f"picture {i}", is_public=True, published_at=start + timedelta(minutes=i))
    client = sign_in(app, "ada@example.com")
    first = explore_prompts(client)
    assert len(first) == 24 and first[0] == "picture 24" and first[-1] == "picture 1"
    assert explore_prompts(client, page=2) == ["picture 0"]


def test_report_flow(app, make_user, make_image):
    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    public = make_image(ada, prompt="a public fox", is_public=True, published_at=utcnow())
    private = make_image(ada, prompt="a private owl")
    reporter, owner = sign_in(app, "bob@example.com"), sign_in(app, "ada@example.com")

    assert "Report this image" in reporter.get(f"/images/{public}").get_data(as_text=True)
    assert "Report this image" not in owner.get(f"/images/{public}").get_data(as_text=True)

    response = post(reporter, f"/images/{public}/report", reason="spam", details="  an advert  ")
    assert response.status_code == 303
    assert "the report is sent to the admins" in reporter.get(response.headers["Location"]).get_data(as_text=True)
    response = post(reporter, f"/images/{public}/report", reason="hate")
    assert "already reported" in reporter.get(response.headers["Location"]).get_data(as_text=True)

    bad = post(reporter, f"/images/{public}/report", reason="not-a-reason")
    assert bad.status_code == 400 and "Not a valid choice" in bad.get_data(as_text=True)
    too_long = post(reporter, f"/images/{public}/report", reason="other", details="x" * 501)
    assert too_long.status_code == 400 and "Keep it under 500 characters" in too_long.get_data(as_text=True)
    assert post(reporter, f"/images/{private}/report", reason="spam").status_code == 404
    assert reporter.post(f"/images/{public}/report", data={"reason": "spam"}).status_code == 400  # no CSRF token
    response = post(owner, f"/images/{public}/report", reason="spam")
    assert "your own image" in owner.get(response.headers["Location"]).get_data(as_text=True)

    with app.app_context():
        reports = db.session.scalars(db.select(Report)).all()
        assert [(r.image_id, r.reporter_id, r.reason, r.details, r.status) for r in reports] == [
            (public, bob, "spam", "an advert", "open")]


@pytest.mark.db
def test_a_racing_second_report_is_refused_by_the_database(app, make_user, make_image, monkeypatch):
    from webapp.moderation import reports

    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    public = make_image(ada, prompt="a public fox", is_public=True, published_at=utcnow())
    monkeypatch.setattr(reports, "open_report_by", lambda user, image: None)  # both requests pass the check
    with app.app_context():
        image, user = db.session.get(Image, public), db.session.get(reports.User, bob)
        reports.file_report(user, image, "spam")
        with pytest.raises(reports.ReportRefused, match="already reported"):
            reports.file_report(user, image, "hate")
        assert [r.reason for r in db.session.scalars(db.select(Report))] == ["spam"]
        db.session.scalars(db.select(Report)).one().status = "resolved"
        db.session.commit()
        reports.file_report(user, image, "hate")  # once resolved, the same person may report again
        assert sorted(r.status for r in db.session.scalars(db.select(Report))) == ["open", "resolved"]


def test_gallery_says_kept_until_only_in_an_images_last_week(app, make_user, make_image):
    ada = make_user("ada@example.com")
    old = utcnow() - timedelta(days=25)  # of 30: deleted in five days
    make_image(ada, prompt="starred", is_starred=True, created_at=old, is_public=True, published_at=utcnow())
    going = make_image(ada, prompt="going soon", created_at=old)
    fresh = make_image(ada, prompt="made today")
    client = sign_in(app, "ada@example.com")
    html = client.get("/gallery").get_data(as_text=True)
    until = (old + timedelta(days=30)).strftime("%Y-%m-%d")
    assert html.count("Kept until") == 1 and f"Kept until {until} · ★ Star keeps it for good" in html
    assert f"Kept until {until}" in client.get(f"/images/{going}").get_data(as_text=True)
    assert "Kept until" not in client.get(f"/images/{fresh}").get_data(as_text=True)
    assert "Kept until" not in client.get("/explore").get_data(as_text=True)
    app.config["RETENTION_DAYS"] = 0  # the site keeps everything, and says nothing about it
    assert "Kept until" not in client.get("/gallery").get_data(as_text=True)
    assert "Kept until" not in client.get(f"/images/{going}").get_data(as_text=True)
