"""The studio's script in a real Chromium: fields a model lacks hidden, fitting LoRAs offered, an LCM-LoRA's steps."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.catalogs import write_models_catalog

from .test_studio import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def deployment_env(tmp_path: Path) -> dict[str, str]:
    return {"EASEL_CATALOG": str(write_models_catalog(tmp_path)), "EASEL_MODEL": "tiny"}


def test_studio_follows_the_model_and_its_loras(page, live_server, make_user) -> None:
    make_user("ada@example.com")
    sign_in(page, live_server)
    page.locator("summary").click()
    negative = page.locator("#negative-prompt-box")
    assert negative.is_visible()
    page.get_by_label("Model", exact=True).select_option("lcm-model")
    assert not negative.is_visible()
    assert page.locator("#capability-note").inner_text() == "This model takes no negative prompt."
    page.get_by_label("Model", exact=True).select_option("cascade")
    assert not page.locator("#guidance-box").is_visible() and negative.is_visible()

    page.get_by_label("Model", exact=True).select_option("tiny")
    first, second = page.locator("#loras-0-name"), page.locator("#loras-1-name")
    offered = first.locator("option:not([hidden])").evaluate_all("options => options.map(o => o.value)")
    assert offered == ["", "ink", "lcm"]
    first.select_option("lcm")
    assert page.locator("#steps").input_value() == "4" and page.locator("#guidance").input_value() == "1.5"
    second.select_option("ink")
    notes = page.locator("#lora-notes").inner_text()
    assert "LCM-LoRA uses LCMScheduler, 2 to 8 steps" in notes and "“ink drawing”" in notes
    page.get_by_label("Model", exact=True).select_option("xl")
    assert first.input_value() == "" and second.input_value() == "", "LoRAs that do not fit are cleared"
    offered = second.locator("option:not([hidden])").evaluate_all("options => options.map(o => o.value)")
    assert offered == ["", "xl-style"]
