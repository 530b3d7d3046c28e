"""The gallery in Chromium: search, tick with click and shift-click, download the ZIP and open it; bulk
star and delete behind one confirmation; a collection shared by a link that works signed out (on a phone)
until it is revoked."""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from datetime import datetime

import pytest

from webapp.extensions import db
from webapp.tables import Image

pytestmark = pytest.mark.browser


def sign_in(page, live_server: str, email: str = "ada@example.com") -> None:
    page.goto(live_server + "/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/")


def test_tick_a_range_download_the_zip_then_star_and_delete(page, live_server, app, make_user, make_image, tmp_path):
    ada = make_user("ada@example.com")
    prompts = [f"a red kite number {n}" for n in range(6)]
    ids = [make_image(ada, prompt=p, created_at=datetime(2026, 5, 1, 10, n)) for n, p in enumerate(prompts)]
    make_image(ada, prompt="a blue whale")
    sign_in(page, live_server)
    page.get_by_role("link", name="My gallery").click()
    page.get_by_label("Search prompts").fill("kite")
    page.get_by_label("Sort").select_option("oldest")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/gallery?q=kite*sort=oldest*")
    boxes = page.locator("#gallery input[name=image_ids]")
    assert boxes.count() == 6
    assert page.locator("#download-zip").is_disabled()  # nothing ticked yet

    boxes.nth(1).click()
    boxes.nth(4).click(modifiers=["Shift"])  # ticks 1..4
    assert page.locator("#selected-count").inner_text() == "4 selected"
    assert [boxes.nth(n).is_checked() for n in range(6)] == [False, True, True, True, True, False]

    with page.expect_download() as download_info:
        page.locator("#download-zip").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-4-images.zip")
    path = tmp_path / "images.zip"
    download.save_as(path)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        manifest = json.loads(archive.read("manifest.json"))
        assert [record["prompt"] for record in manifest["images"]] == prompts[1:5]
        for record in manifest["images"]:
            assert archive.read(record["file"]).startswith(b"\x89PNG\r\n\x1a\n")
            assert record["model"] == "easel-tiny" and record["steps"] == 4
        assert len(archive.namelist()) == 5

    page.get_by_role("button", name="Select all on page").click()
    assert page.locator("#selected-count").inner_text() == "6 selected"
    page.locator("#bulk-star").click()
    page.get_by_text("Starred 6 images.").wait_for()
    assert page.url.endswith("/gallery?q=kite&sort=oldest")  # back on the same filtered page
    with app.app_context():
        assert all(db.session.get(Image, image_id).is_starred for image_id in ids)

    boxes.nth(0).click()
    page.once("dialog", lambda dialog: dialog.dismiss())  # one question for the whole batch: "no"
    page.locator("#bulk-delete").click()
    assert boxes.count() == 6
    dialogs = []
    page.once("dialog", lambda dialog: dialogs.append(dialog.message) or dialog.accept())
    page.locator("#bulk-delete").click()
    page.get_by_text("Deleted 1 image.").wait_for()
    assert dialogs == ["Delete the selected images for good?"]
    assert boxes.count() == 5
    with app.app_context():
        assert db.session.get(Image, ids[0]) is None


def test_pages_keep_their_place_on_back(page, live_server, make_user, make_image):
    ada = make_user("ada@example.com")
    for n in range(30):
        make_image(ada, prompt=f"cat {n}", created_at=datetime(2026, 1, 1, 0, n))
    sign_in(page, live_server)
    page.goto(live_server + "/gallery?q=cat")
    page.get_by_role("link", name="Next").click()
    page.wait_for_url("**page=2**")
    first_on_page_two = page.locator("#gallery img").first.get_attribute("alt")
    page.locator("#gallery a").first.click()
    page.wait_for_url("**/images/*")
    page.go_back()
    assert "page=2" in page.url and "q=cat" in page.url
    assert page.locator("#gallery img").first.get_attribute("alt") == first_on_page_two


def test_collection_link_works_signed_out_on_a_phone_until_revoked(browser, page, live_server, app, make_user,
                                                                   make_image, tmp_path):
    app.config["PUBLIC_BASE_URL"] = live_server  # links are built on the public address
    ada = make_user("ada@example.com")
    for n, colour in enumerate(["red", "green", "blue", "gold"]):
        make_image(ada, prompt=f"a {colour} balloon over the sea", created_at=datetime(2026, 6, 1, 9, n))
    sign_in(page, live_server)
    page.goto(live_server + "/gallery")
    page.get_by_role("button", name="Select all on page").click()
    page.get_by_label("New collection name").fill("Balloons")
    page.get_by_role("button", name="Add to collection").click()
    page.get_by_text("Added 4 images to “Balloons”.").wait_for()
    page.get_by_role("link", name="My collections").click()
    page.get_by_role("link", name="Balloons").click()
    page.get_by_role("button", name="Share with a link").click()
    link = page.locator("#share-link").input_value()
    assert link.startswith(live_server + "/c/")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == link

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                has_touch=True)  # a fresh browser: not signed in
    try:
        other = phone.new_page()
        other.goto(link)
        assert other.locator("#collection-name").inner_text() == "Balloons"
        other.wait_for_function("() => [...document.querySelectorAll('#collection-images img')]"
                                ".every(img => img.complete && img.naturalWidth > 0)")
        assert other.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
        boxes = [other.locator("#collection-images .col").nth(n).bounding_box() for n in range(4)]
        assert boxes[0]["y"] == boxes[1]["y"] and boxes[1]["x"] > boxes[0]["x"]  # two across
        assert boxes[2]["y"] > boxes[0]["y"]
        assert 150 < boxes[0]["width"] < 200
        shot = tmp_path / "collection-390.png"
        other.screenshot(path=str(shot), full_page=True)
        if os.environ.get("EASEL_SCREENSHOT_DIR"):
            shutil.copy(shot, os.environ["EASEL_SCREENSHOT_DIR"])

        page.get_by_role("button", name="Stop sharing").click()
        page.get_by_text("The link no longer works.").wait_for()
        other.reload()
        assert other.get_by_role("heading", name="This link no longer works").is_visible()
        assert other.locator("#collection-images").count() == 0
    finally:
        phone.close()
