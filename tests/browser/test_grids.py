"""A comparison grid from the studio in a real Chromium: two axes, "Make a grid", the grid's page, its picture."""
from __future__ import annotations

import pytest

from tests.browser.test_studio import sign_in

pytestmark = pytest.mark.browser


def test_a_seed_by_guidance_grid_from_the_studio(page, live_server, make_user, workers):
    make_user("ada@example.com")
    workers.start()
    sign_in(page, live_server)
    page.get_by_label("Prompt", exact=True).fill("a {red|blue} (circle:1.2) in the center, yellow background")
    page.locator("summary").click()  # More settings, where the grid's axes are
    page.get_by_label("X axis").select_option("seed")
    page.get_by_label("X values").fill("1, 2")
    page.get_by_label("Y axis").select_option("guidance")
    page.get_by_label("Y values").fill("2, 6")
    page.get_by_label("Steps", exact=True).fill("3")
    page.get_by_role("button", name="Make a grid").click()
    page.wait_for_url("**/grids/*")
    assert "CFG Scale (2.0, 6.0)" in page.locator("#grid-axes").inner_text()
    page.locator("#grid-picture").wait_for(timeout=120_000)  # the page reloads itself until the picture is there
    assert page.locator("#grid-cells li").count() == 4
    width = page.locator("#grid-picture").evaluate("img => img.naturalWidth")
    assert width > 2 * 128, "two labelled columns of doubled 64-pixel cells"
