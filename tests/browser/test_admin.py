"""An admin signs in, hides a reported image from the moderation queue, then bans its author, in Chromium."""
from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.tables import Image, Report, User, utcnow

pytestmark = pytest.mark.browser


def test_admin_hides_a_reported_image_and_bans_its_author(page, live_server, app, make_user, make_image):
    make_user("root@example.com", is_admin=True)
    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    image_id = make_image(ada, prompt="a rude doodle", is_public=True, published_at=utcnow())
    with app.app_context():
        db.session.add(Report(image_id=image_id, reporter_id=bob, reason="hate", details="insults a neighbour"))
        db.session.commit()

    page.goto(live_server + "/auth/login")
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="Reports 1").click()
    card = page.locator(f"#reported-{image_id}")
    card.get_by_text("insults a neighbour").wait_for()
    card.get_by_role("button", name="Hide image").click()
    page.get_by_text("Resolved 1 report(s): the image is hidden.").wait_for()
    page.get_by_text("No open reports.").wait_for()

    page.get_by_role("link", name="Users").click()
    row = page.locator(f"#user-{ada}")
    row.get_by_placeholder("Reason (optional)").fill("posts insults")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Ban").click()
    page.get_by_text("ada@example.com is banned").wait_for()
    assert page.locator(f"#user-{ada} .status").inner_text() == "banned"

    page.get_by_role("link", name="Audit log").click()
    log = page.locator("#audit-log").inner_text()
    assert "user.ban" in log and "report.hide" in log and "posts insults" in log
    with app.app_context():
        assert db.session.get(Image, image_id).is_hidden is True
        assert db.session.get(User, ada).is_banned is True
