"""The studio as a workbench in a real Chromium: tries run beside the form without a page load, several at
once, across a reload; prompt history; seeds and settings back from any result; it all works without script."""
from __future__ import annotations

import pytest

from tests.browser.test_studio import sign_in
from tests.support import loaded_image_width

pytestmark = pytest.mark.browser


def mark_page(page) -> None:
    """A flag that a page load would wipe out."""
    page.evaluate("window.__sameDocument = true")


def same_document(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def fill(page, prompt: str, steps: int, model: str = "easel-tiny-slow") -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Model", exact=True).select_option(model)
    page.locator("summary").click() if not page.locator("details[open]").count() else None
    page.get_by_label("Steps", exact=True).fill(str(steps))


def try_card(page, prompt: str):
    return page.locator(".try").filter(has_text=prompt)


def test_two_tries_beside_the_form_across_a_reload_then_seed_and_settings_back(page, live_server, make_user,
                                                                              workers):
    make_user("ada@example.com")
    workers.start()
    sign_in(page, live_server)
    studio_url = page.url
    mark_page(page)

    fill(page, "a slow green field", steps=150)
    page.get_by_label("Sampler", exact=True).select_option("Euler a")
    page.get_by_label("Prompt", exact=True).press("Control+Enter")  # the keyboard shortcut submits
    try_card(page, "a slow green field").wait_for()
    fill(page, "a quick red sun", steps=6)
    page.get_by_label("Sampler", exact=True).select_option("")  # Model default
    page.get_by_label("Seed", exact=True).click()  # typing a seed makes it fixed
    page.get_by_label("Seed", exact=True).fill("1234")
    page.get_by_role("button", name="Create").click()
    try_card(page, "a quick red sun").wait_for()

    # Both in my queue; the form kept every value; no page load happened.
    queue = page.locator("#queue .queue-item")
    queue.nth(1).wait_for()
    assert [queue.nth(i).locator(".fw-semibold").inner_text() for i in range(2)] == \
        ["a slow green field", "a quick red sun"]
    assert page.get_by_label("Prompt", exact=True).input_value() == "a quick red sun"
    assert page.get_by_label("Steps", exact=True).input_value() == "6"
    assert page.get_by_label("Seed", exact=True).input_value() == "1234"
    assert not page.get_by_label("Random", exact=True).is_checked()
    assert page.url == studio_url and same_document(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#queue .queue-status')].some(e => e.innerText.startsWith('Painting'))",
        timeout=90000)
    assert "Waiting in the queue" in queue.nth(1).locator(".queue-status").inner_text()

    # Reload mid-run: the queue and the tries come back from the server.
    page.reload()
    queue.nth(1).wait_for()
    assert queue.count() == 2 and page.locator(".try").count() == 2

    # Each try ends with its own results; the queue empties.
    for prompt in ("a slow green field", "a quick red sun"):
        try_card(page, prompt).locator(".try-images img").wait_for(timeout=180000)
    page.wait_for_selector("#queue-empty:not([hidden])")
    red = try_card(page, "a quick red sun")
    assert red.locator(".try-images img").get_attribute("alt") == "a quick red sun"
    assert loaded_image_width(page, ".try[data-status=succeeded] .try-images img") > 0

    # "Use seed" from a result, then "reuse all settings" of another, without a page load.
    mark_page(page)
    page.get_by_label("Random", exact=True).check()
    assert page.get_by_label("Seed", exact=True).input_value() == ""
    red.get_by_role("button", name="Use seed 1234 in the form").click()
    assert page.get_by_label("Seed", exact=True).input_value() == "1234"
    assert not page.get_by_label("Random", exact=True).is_checked()
    green = try_card(page, "a slow green field")
    green_seed = green.locator(".use-seed").inner_text().removeprefix("Use seed ")
    green.locator(".reuse-settings").click()
    assert page.get_by_label("Prompt", exact=True).input_value() == "a slow green field"
    assert page.get_by_label("Steps", exact=True).input_value() == "150"
    assert page.get_by_label("Model", exact=True).input_value() == "easel-tiny-slow"
    assert page.get_by_label("Seed", exact=True).input_value() == green_seed
    assert page.get_by_label("Sampler", exact=True).input_value() == "Euler a"
    assert same_document(page)


def test_refusals_and_errors_shown_in_the_page(app, page, live_server, make_user):
    app.config["MAX_QUEUED_PER_USER"] = 2
    make_user("ada@example.com")
    sign_in(page, live_server)
    mark_page(page)
    fill(page, "", steps=999, model="easel-tiny")
    page.get_by_role("button", name="Create").click()
    page.locator(".invalid-feedback").first.wait_for()
    assert page.locator("#prompt + .invalid-feedback, #prompt ~ .invalid-feedback").inner_text() == \
        "Describe the picture you want."
    assert "Use 1 to 50 steps" in page.locator("#steps ~ .invalid-feedback").inner_text()
    assert page.locator("#prompt").get_attribute("aria-invalid") == "true"
    # Fixed, it goes through, and the errors go away (no worker: it waits in the queue).
    page.get_by_label("Prompt", exact=True).fill("a calm sea")
    page.get_by_label("Steps", exact=True).fill("5")
    for _ in range(2):
        page.get_by_role("button", name="Create").click()
    page.locator("#queue .queue-item").nth(1).wait_for()
    assert page.locator(".invalid-feedback").count() == 0
    page.get_by_role("button", name="Create").click()  # over MAX_QUEUED_PER_USER: the server's message
    page.wait_for_selector("#studio-error:not([hidden])")
    assert "You already have 2 generations waiting" in page.locator("#studio-error").inner_text()
    # Cancel from the queue panel.
    page.locator("#queue").get_by_role("button", name="Cancel: a calm sea").first.click()
    page.wait_for_function("() => document.querySelectorAll('#queue .queue-item').length === 1")
    page.wait_for_selector(".try[data-status=canceled]")
    assert same_document(page)


def test_six_quick_creates_all_wait_in_my_queue_and_the_eleventh_waiting_is_refused(app, page, live_server,
                                                                                    make_user):
    # The site's own limits: MAX_ACTIVE_PER_USER (2) runs at once, MAX_QUEUED_PER_USER (10) wait. No worker runs
    # here, so every try waits.
    assert (app.config["MAX_ACTIVE_PER_USER"], app.config["MAX_QUEUED_PER_USER"]) == (2, 10)
    make_user("ada@example.com")
    sign_in(page, live_server)
    mark_page(page)
    fill(page, "a blue circle", steps=5, model="easel-tiny")
    create = page.get_by_role("button", name="Create")
    queue = page.locator("#queue .queue-item")
    for n in range(6):
        create.click()
        queue.nth(n).wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('#queue .queue-status')]"
                           ".every((el, i) => el.textContent.startsWith('Waiting in the queue: position ' + (i + 1)))")
    assert page.locator("#studio-error").is_hidden()
    for n in range(6, 10):
        create.click()
        queue.nth(n).wait_for()
    assert page.locator("#studio-error").is_hidden()
    create.click()
    page.wait_for_selector("#studio-error:not([hidden])")
    assert "You already have 10 generations waiting in the queue (the limit is 10)" in \
        page.locator("#studio-error").inner_text()
    assert queue.count() == 10 and same_document(page)


def test_prompt_history_offered_as_i_type(page, live_server, make_user, make_image):
    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    make_image(ada, prompt="a red fox in the snow")
    make_image(ada, prompt="a blue whale")
    make_image(bob, prompt="a red herring")  # not mine: never offered
    sign_in(page, live_server)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("red")
    options = page.locator("#prompt-history [role=option]")
    options.first.wait_for()
    assert options.all_inner_texts() == ["a red fox in the snow"]
    prompt.press("ArrowDown")
    prompt.press("Enter")
    assert prompt.input_value() == "a red fox in the snow"
    assert page.locator("#prompt-history").is_hidden()


def test_without_javascript_the_form_posts_and_redirects(browser, live_server, make_user):
    make_user("ada@example.com")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live_server)
        page.get_by_label("Prompt", exact=True).fill("a plain old form")
        page.get_by_role("button", name="Create").click()
        page.wait_for_url("**/generations/*")
        assert "a plain old form" in page.locator("h1").inner_text()
    finally:
        context.close()
