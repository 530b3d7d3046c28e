"""A newcomer's first minutes, on a phone, timed: from the page opening on a fresh site (no mail server, so the
sign-up link is on the page) to their first picture on screen (docs/newcomer.md records the time). Then what
they meet next: the hint when the model cannot draw a word, only the styles that change something, the skip link
and the prompt first with Tab, Create in reach with every setting open, the newest result right below it, and
the gallery's filters folded behind one button."""
from __future__ import annotations

import os
import time

import pytest
from redis import Redis

from tests.support import wait_for
from webapp.worker_status import KEY

pytestmark = pytest.mark.browser

TARGET_SECONDS = 20.0  # the target: sign-up to the first picture, the site's own time
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def test_sign_up_to_first_picture_on_a_phone_then_what_a_newcomer_meets(app, browser, live_server, workers, redis_url):
    app.config["MAIL_BACKEND"] = "console"  # a fresh `make run`: no mail server
    worker = workers.start()  # as under `make run`, whose banner waits for a worker with its model loaded
    with Redis.from_url(redis_url) as redis:
        wait_for(lambda: redis.exists(KEY.format(worker.worker_name)), timeout=120, message="the worker to be ready")
    context = browser.new_context(**PHONE)
    context.set_default_timeout(20000)
    page = context.new_page()
    try:
        began = time.perf_counter()
        page.goto(live_server + "/")
        page.get_by_role("link", name="Create an account").first.click()
        page.get_by_label("Email").fill("newcomer@example.com")
        page.get_by_label("Password", exact=True).fill("correct horse")
        page.get_by_label("Confirm password").fill("correct horse")
        page.get_by_role("button", name="Create account").click()
        page.get_by_role("link", name="Finish creating my account").click()
        page.get_by_role("button", name="Create my account").click()
        page.get_by_label("Prompt", exact=True).fill("a red cat in the top left, blue background")
        page.get_by_role("button", name="Create").click()
        # wait up to a minute, so that a slow first picture fails on the 20 s target below with its time, not here
        page.wait_for_function("() => { const i = document.querySelector('#tries .result img');"
                               " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
        seconds = time.perf_counter() - began
        print(f"newcomer: sign-up to the first picture in {seconds:.1f} s")  # docs/newcomer.md
        assert seconds < TARGET_SECONDS

        # The result says in one line what the model cannot draw, with an example it can.
        hint = page.locator("#tries .try-hint")
        assert "cannot draw “cat”" in hint.inner_text() and "Try: “a red star" in hint.inner_text()
        # Only the styles that change something on the bundled model are offered.
        offered = page.locator("#style option:not([hidden])").all_inner_texts()
        assert offered == ["No style", "Pixel art"]

        # On a phone the newest result is right below the form's Create, before the queue.
        create = page.get_by_role("button", name="Create")
        assert page.locator("#tries").bounding_box()["y"] < page.locator("#queue-heading").bounding_box()["y"]
        assert page.locator("#tries").bounding_box()["y"] > create.bounding_box()["y"]
        # With every setting open and the page at its top, Create stays in reach (sticky at the bottom).
        page.locator("summary").click()
        page.evaluate("window.scrollTo(0, 0)")
        box = create.bounding_box()
        assert page.locator("#studio-form").bounding_box()["height"] > 844  # the form is taller than the phone
        assert 0 < box["y"] and box["y"] + box["height"] <= 844
        if os.environ.get("EASEL_SCREENSHOT_DIR"):  # to look at: the studio on a phone, every setting open
            page.screenshot(path=os.path.join(os.environ["EASEL_SCREENSHOT_DIR"], "studio-390.png"))

        # Keyboard: the first Tab reaches the skip link, which leads to the main content, where the prompt is the
        # first field.
        page.reload()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "skip-link"
        assert page.locator("#skip-link").is_visible()
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "prompt"

        # The gallery's filters fold behind one button on a phone.
        page.goto(live_server + "/gallery")
        assert not page.get_by_label("Model", exact=True).is_visible()
        page.get_by_role("button", name="Search and filters").click()
        page.get_by_label("Model", exact=True).wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
