"""Done when: on S3 with Mailgun, a person makes a picture, gets the email, and opens its link in a
fresh browser without signing in."""
from __future__ import annotations

import pytest

from tests.support import bucket_keys, links_in, loaded_image_width

pytestmark = pytest.mark.browser


def test_generate_get_email_open_link_signed_out(browser, page, live_server, make_user, s3_bucket, mailgun, workers,
                                                 tmp_path):
    make_user("ada@example.com")
    workers.start(queues="generate,default", extra_env={"PUBLIC_BASE_URL": live_server})
    page.goto(live_server + "/auth/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Prompt", exact=True).fill("a green triangle on white")
    page.locator("summary").click()
    page.get_by_label("Steps", exact=True).fill("2")
    page.get_by_role("button", name="Create").click()
    page.locator(".try").first.get_by_role("link", name="Progress page").click()  # the studio stays; the try links
    page.wait_for_url("**/generations/*")
    page.wait_for_selector("#images img", timeout=120000)
    assert loaded_image_width(page, "#images img") > 0  # the thumbnail came from S3

    [message] = mailgun.wait_for_messages(1, timeout=60)
    assert message["to"] == "ada@example.com" and message["from"] == "Easel <art@mg.example.test>"
    assert message["subject"] == "Your art is ready: a green triangle on white"
    assert message["h:List-Unsubscribe"].startswith(f"<{live_server}/email/unsubscribe/")
    [link] = links_in(message["text"], "/s/")
    assert link.startswith(live_server + "/s/") and link in message["html"]

    stranger = browser.new_context()  # a fresh browser: no cookies, not signed in
    try:
        other = stranger.new_page()
        other.goto(link)
        assert other.locator("#prompt").inner_text() == "a green triangle on white"
        other.wait_for_function("() => document.getElementById('image').complete", timeout=15000)
        assert loaded_image_width(other, "#image") == 64
        assert other.get_by_role("link", name="Sign in").first.is_visible()
        other.screenshot(path=str(tmp_path / "result-link.png"))
    finally:
        stranger.close()
    assert len(bucket_keys(s3_bucket)) == 2
