"""A person makes a picture in a real Chromium: prompt → progress bar → image → gallery."""
from __future__ import annotations

import pytest

from tests.support import loaded_image_width

pytestmark = pytest.mark.browser


def sign_in(page, live_server: str, email: str = "ada@example.com", password: str = "correct horse") -> None:
    page.goto(live_server + "/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.get_by_text("Studio").first.wait_for()
    page.wait_for_load_state("load")  # the studio's scripts are bound before the test types


def submit_prompt(page, prompt: str, model: str = "easel-tiny-slow", steps: int | None = None) -> None:
    """Fill the studio form as a person would and press Create."""
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Model", exact=True).select_option(model)
    if steps is not None:
        page.locator("summary").click()
        page.get_by_label("Steps", exact=True).fill(str(steps))
    page.get_by_role("button", name="Create").click()


def test_prompt_progress_image_gallery(page, live_server, make_user, workers, tmp_path):
    make_user("ada@example.com")
    workers.start()
    sign_in(page, live_server)
    submit_prompt(page, "a yellow square on a purple background", steps=200)
    page.locator(".try").get_by_role("link", name="Progress page").click()
    page.wait_for_url("**/generations/*")

    # The bar moves: some width strictly between 0% and 100% while painting.
    page.wait_for_function(
        "() => { const w = parseFloat(document.getElementById('progress-bar').style.width);"
        " return w > 0 && w < 100; }", timeout=90000)
    assert "Painting: step" in page.locator("#status-text").inner_text()
    page.wait_for_selector("#preview-box:not([hidden]) img[src*='preview.webp']", timeout=60000)
    page.screenshot(path=str(tmp_path / "progress.png"))

    page.wait_for_selector("#images img", timeout=120000)
    assert page.locator("#status-text").inner_text() == "Done"
    assert page.locator("#cancel-form").is_hidden()
    assert loaded_image_width(page, "#images img") > 0  # the thumbnail really loaded

    page.get_by_role("link", name="My gallery").first.click()
    page.wait_for_selector("#gallery img")
    page.locator("#gallery a").first.click()
    assert "a yellow square on a purple background" in page.locator("h1").inner_text()
    assert loaded_image_width(page, "#image") == 64
    page.screenshot(path=str(tmp_path / "detail.png"))


def test_form_errors_shown_next_to_fields(page, live_server, make_user):
    make_user("ada@example.com")
    sign_in(page, live_server)
    page.get_by_role("button", name="Create").click()
    assert "Describe the picture you want." in page.locator(".invalid-feedback").first.inner_text()


def test_cancel_from_the_page(page, live_server, make_user, workers):
    make_user("ada@example.com")
    workers.start()
    sign_in(page, live_server)
    submit_prompt(page, "a green star", steps=1000)
    page.locator(".try").get_by_role("link", name="Progress page").click()
    page.wait_for_url("**/generations/*")
    page.wait_for_function("() => { const e = document.getElementById('status-text');"
                           " return e !== null && e.innerText.startsWith('Painting'); }", timeout=90000)
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_function("() => { const e = document.getElementById('status-text');"  # the cancel reloads the page
                           " return e !== null && e.innerText === 'Canceled'; }", timeout=30000)
