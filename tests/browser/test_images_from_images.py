"""Images from images in a real Chromium: upload a start, watch it work, then a variation and its lineage."""
from __future__ import annotations

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw

from tests.browser.test_studio import sign_in
from tests.support import loaded_image_width

pytestmark = pytest.mark.browser


def test_upload_watch_and_see_the_lineage(page, live_server, make_user, workers, tmp_path):
    make_user("ada@example.com")
    start = PILImage.new("RGB", (200, 120), (255, 255, 0))  # a JPEG photo-sized start: cropped to 64×64
    ImageDraw.Draw(start).ellipse((70, 30, 130, 90), fill=(0, 0, 255))
    start.save(tmp_path / "start.jpg", "JPEG")
    (tmp_path / "notes.png").write_text("not a picture")
    workers.start()
    sign_in(page, live_server)

    page.get_by_label("Prompt", exact=True).fill("a blue circle on a yellow background")
    page.set_input_files("#init_image", str(tmp_path / "notes.png"))
    page.get_by_role("button", name="Create").click()
    assert "not a PNG, JPEG or WebP" in page.locator("#start-image .invalid-feedback").inner_text()

    page.set_input_files("#init_image", str(tmp_path / "start.jpg"))
    page.get_by_label("Strength", exact=True).fill("0.5")
    page.get_by_label("Make a timelapse").check()
    page.locator("details").evaluate("details => { details.open = true; }")  # open after the error, else closed
    page.get_by_label("Steps", exact=True).fill("40")
    page.get_by_role("button", name="Create").click()
    page.locator(".try").first.get_by_role("link", name="Progress page").click()  # the studio stays; the try links
    page.wait_for_url("**/generations/*")
    page.wait_for_function("() => document.getElementById('status-text').innerText.startsWith('Painting')"
                           " || document.querySelector('#images img')", timeout=90000)
    page.wait_for_selector("#images img", timeout=120000)
    assert page.locator("#status-text").inner_text() == "Done"

    page.locator("#images a").first.click()
    page.wait_for_selector("#lineage")
    assert "an uploaded image" in page.locator("#lineage-source").inner_text()
    assert loaded_image_width(page, "#upload-thumb") > 0
    # The timelapse on demand: a play button swaps the picture for it in the same place, and back.
    picture = page.locator("#image").get_attribute("src")
    page.get_by_role("button", name="Play timelapse").click()
    assert page.locator("#image").get_attribute("src").endswith("/timelapse")
    assert loaded_image_width(page, "#image") > 0 and page.locator("img[src$='/timelapse']").count() == 1
    page.get_by_role("button", name="Show the picture").click()
    assert page.locator("#image").get_attribute("src") == picture
    parent_url = page.url

    page.locator("#var-num").fill("1")
    page.get_by_role("button", name="More like this").click()
    page.wait_for_url("**/generations/*")
    page.wait_for_selector("#images img", timeout=120000)
    page.locator("#images a").first.click()
    page.wait_for_selector("#parent-link")
    assert "a variation of" in page.locator("#lineage-source").inner_text()
    page.locator("#parent-link").click()
    page.wait_for_url(parent_url)
    assert page.locator("#children a.child-link").count() == 1
    assert loaded_image_width(page, "#children img") > 0
    page.screenshot(path=str(tmp_path / "lineage.png"))
