"""The studio as a board in a real Chromium: my recent pictures as cards on every load (prompt, "Use seed",
"Reuse settings", open, star), newest first, joined live by a finished try whose preview and picture share one
place; tiny pictures pixelated at a whole multiple."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.browser.test_studio import sign_in
from tests.browser.test_workbench import fill, mark_page, same_document, try_card

pytestmark = pytest.mark.browser


def starred(app, image_id: str) -> bool:
    from webapp.extensions import db
    from webapp.tables import Image

    with app.app_context():
        return db.session.get(Image, image_id).is_starred


def finished(app, image_id: str, **columns) -> None:
    """Set columns of the image's generation (its seed, steps, when it finished)."""
    from webapp.extensions import db
    from webapp.tables import Image

    with app.app_context():
        generation = db.session.get(Image, image_id).generation
        for name, value in columns.items():
            setattr(generation, name, value)
        db.session.commit()


def place_in_card(locator) -> dict:
    """Where an element is inside its try's card, and its size (the card itself may move down the page)."""
    return locator.evaluate("el => { const r = el.getBoundingClientRect(), c = el.closest('.try')"
                            ".getBoundingClientRect(); return {x: r.x - c.x, y: r.y - c.y, w: r.width, h: r.height}; }")


def whole_multiple(page, selector: str) -> float:
    """How many times its own pixels a loaded picture is shown (an integer when sharp)."""
    page.wait_for_function("sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth; }",
                           arg=selector)
    return page.eval_on_selector(selector, "i => i.getBoundingClientRect().width / i.naturalWidth")


def test_recent_pictures_are_a_board_newest_first_with_seed_settings_open_and_star(app, page, live_server, make_user,
                                                                                   make_image):
    from webapp.tables import utcnow

    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    now = utcnow()
    older = make_image(ada, prompt="an old green square")
    finished(app, older, seed=11, steps=7, finished_at=now - timedelta(hours=2))
    newer = make_image(ada, prompt="a new blue star")
    finished(app, newer, seed=22, steps=9, finished_at=now - timedelta(minutes=5))
    make_image(bob, prompt="not mine")
    sign_in(page, live_server)
    mark_page(page)

    cards = page.locator("#recent .board-card")
    assert cards.count() == 2  # mine only
    assert [cards.nth(i).get_attribute("data-image-id") for i in range(2)] == [newer, older]
    assert cards.nth(0).locator(".board-prompt").inner_text() == "a new blue star"
    assert cards.nth(0).get_by_role("img").get_attribute("alt") == "a new blue star"
    assert whole_multiple(page, "#recent .board-card img") == 2  # 64 px shown at 128, pixel for pixel
    assert page.eval_on_selector("#recent .board-card img", "i => getComputedStyle(i).imageRendering") in \
        {"pixelated", "crisp-edges"}

    old_card = cards.nth(1)
    old_card.get_by_role("button", name="Use seed 11").click()
    assert page.get_by_label("Seed", exact=True).input_value() == "11"
    cards.nth(0).get_by_role("button", name="Reuse settings").click()
    assert page.get_by_label("Prompt", exact=True).input_value() == "a new blue star"
    assert page.get_by_label("Steps", exact=True).input_value() == "9"
    assert page.get_by_label("Seed", exact=True).input_value() == "22"

    star = old_card.get_by_role("button", name="Star")
    assert star.get_attribute("aria-pressed") == "false"
    star.click()
    page.wait_for_function("() => document.querySelectorAll('#recent .star[aria-pressed=true]').length === 1")
    assert starred(app, older) and not starred(app, newer) and same_document(page)

    page.reload()
    cards = page.locator("#recent .board-card")
    assert cards.nth(1).get_by_role("button", name="Star").get_attribute("aria-pressed") == "true"
    cards.nth(1).get_by_role("link", name="Open").click()
    page.wait_for_url(f"**/images/{older}")
    assert "an old green square" in page.locator("h1").inner_text()


def test_no_pictures_yet_says_where_they_will_appear(page, live_server, make_user):
    make_user("ada@example.com")
    sign_in(page, live_server)
    assert page.locator("#recent .board-card").count() == 0
    assert "Your pictures will appear here" in page.locator("#recent-empty").inner_text()


def test_a_finished_try_takes_its_previews_place_and_joins_the_board_live(page, live_server, make_user, make_image,
                                                                          workers):
    ada = make_user("ada@example.com")
    earlier = make_image(ada, prompt="an earlier picture")
    workers.start()
    sign_in(page, live_server)
    mark_page(page)
    fill(page, "a purple moon in the center", steps=150)
    page.get_by_role("button", name="Create").click()
    card = try_card(page, "a purple moon in the center")
    card.wait_for()

    box = card.locator(".try-preview-box")
    reserved = place_in_card(box)  # the place is kept from the start, before any preview
    assert reserved["w"] == reserved["h"] == 256  # 64 px × 4
    card.locator(".try-preview:not([hidden])").wait_for(timeout=120000)
    preview = place_in_card(card.locator(".try-preview"))
    assert preview == reserved
    assert card.locator(".try-preview").evaluate("i => getComputedStyle(i).imageRendering") in \
        {"pixelated", "crisp-edges"}

    picture = card.locator(".try-images img")
    picture.wait_for(timeout=180000)
    assert place_in_card(picture) == preview  # same place, same size: the card does not jump
    assert box.is_hidden()
    assert whole_multiple(page, ".try[data-status=succeeded] .try-images img") == 4
    assert picture.evaluate("i => getComputedStyle(i).imageRendering") in {"pixelated", "crisp-edges"}

    # The board has it first, without a reload, with its own seed.
    image_id = card.locator(".result").get_attribute("data-image-id")
    page.wait_for_function("id => document.querySelector('#recent .board-card').dataset.imageId === id", arg=image_id)
    first = page.locator("#recent .board-card").first
    assert first.locator(".board-prompt").inner_text() == "a purple moon in the center"
    seed = card.locator(".use-seed").inner_text().removeprefix("Use seed ")
    first.get_by_role("button", name=f"Use seed {seed}").click()
    assert page.get_by_label("Seed", exact=True).input_value() == seed
    assert page.locator("#recent .board-card").nth(1).get_attribute("data-image-id") == earlier
    assert same_document(page)


def test_after_a_refused_upload_a_valid_file_clears_the_error_and_shows_as_a_thumbnail(page, live_server, make_user,
                                                                                         tmp_path):
    from PIL import Image as PILImage

    (tmp_path / "notes.png").write_text("not a picture at all")
    PILImage.new("RGB", (40, 30), "orange").save(tmp_path / "start.webp")
    (tmp_path / "notes.txt").write_text("words")
    make_user("ada@example.com")
    sign_in(page, live_server)
    mark_page(page)
    field = page.locator("#init_image")
    error = page.locator("#start-image .invalid-feedback")
    page.get_by_label("Prompt", exact=True).fill("a blue circle")
    field.set_input_files(str(tmp_path / "notes.png"))
    page.get_by_role("button", name="Create").click()
    error.wait_for()
    assert "not a PNG, JPEG or WebP" in error.inner_text()
    assert field.get_attribute("aria-invalid") == "true"

    field.set_input_files(str(tmp_path / "start.webp"))
    assert error.count() == 0 and field.get_attribute("aria-invalid") is None
    thumb = page.get_by_role("img", name="The chosen starting image: start.webp")
    page.wait_for_function("() => { const i = document.getElementById('init-image-thumb');"
                           " return i && i.complete && i.naturalWidth === 40; }")
    assert thumb.get_attribute("src").startswith("blob:")

    field.set_input_files(str(tmp_path / "notes.txt"))  # not a picture: said at once, the thumbnail goes
    assert error.inner_text() == "Choose a PNG, JPEG or WebP picture."
    assert thumb.count() == 0
    field.set_input_files([])
    assert error.count() == 0 and same_document(page)
