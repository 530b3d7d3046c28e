"""A picture the safety check holds, in Chromium: its owner sees it blurred, with the reason, on its page, in the
gallery and on its generation's page."""
from __future__ import annotations

import pytest

from tests.browser.test_gallery import sign_in
from webapp.extensions import db
from webapp.tables import Image

pytestmark = pytest.mark.browser

REASON = "Held by the safety check: female breast exposed (score 0.91)."


def test_the_owner_sees_a_held_picture_blurred_with_the_reason(page, live_server, app, make_user, make_image):
    ada = make_user("ada@example.com")
    held = make_image(ada, prompt="a beach", is_held=True, held_reason=REASON,
                      safety_labels=[["FEMALE_BREAST_EXPOSED", 0.91]])
    plain = make_image(ada, prompt="a lighthouse")
    with app.app_context():
        generation_id = db.session.get(Image, held).generation_id
    sign_in(page, live_server)

    def blur(selector: str) -> str:
        element = page.locator(selector)
        element.wait_for()
        return element.evaluate("e => getComputedStyle(e).filter")

    page.goto(f"{live_server}/images/{held}")
    assert blur("#image") == "blur(24px)"
    assert REASON in page.locator("#held-reason").inner_text()
    page.goto(f"{live_server}/images/{plain}")
    assert blur("#image") == "none" and page.locator("#held-reason").count() == 0

    page.goto(f"{live_server}/gallery")
    assert blur(f"#gallery a[href='/images/{held}'] img") == "blur(24px)"
    assert blur(f"#gallery a[href='/images/{plain}'] img") == "none"
    assert page.locator(".held-badge").get_attribute("title") == REASON

    page.goto(f"{live_server}/generations/{generation_id}")  # the progress page draws it from the API's JSON
    assert blur("#images img") == "blur(24px)"
    assert page.locator("#images img").get_attribute("title") == REASON
