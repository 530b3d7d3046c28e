"""The studio form in a real Chromium: the seed field is typeable with "Random" next to it; width and height are
one menu of the model's sizes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import ROOT

from .test_studio import sign_in

pytestmark = pytest.mark.browser

CATALOG = """
[models.tiny]
label = "Tiny"
kind = "sd"
path = "{root}/models/easel-tiny"
default_width = 64
default_height = 64
default_steps = 20
default_guidance = 3.0
sizes = [[64, 64], [64, 32], [32, 48]]

[models.xl]
label = "XL"
kind = "sdxl"
path = "{folder}/xl-folder"
default_width = 1024
default_height = 1024
default_steps = 20
default_guidance = 5.0
sizes = [[1024, 1024], [896, 1152], [1152, 896]]
"""


@pytest.fixture
def deployment_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "xl-folder").mkdir()
    (tmp_path / "xl-folder" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG.format(root=ROOT, folder=tmp_path), encoding="utf-8")
    return {"EASEL_CATALOG": str(catalog), "EASEL_MODEL": "tiny"}


def described(card) -> str:
    """A try's line of settings: model · size · steps · guidance · seed."""
    return card.locator("p.small").first.inner_text()


def offered(page) -> list[str]:
    return page.locator("#size option").all_inner_texts()


def test_width_and_height_are_a_choice_of_the_models_sizes(page, live_server, make_user):
    make_user("ada@example.com")
    sign_in(page, live_server)
    page.locator("summary").click()
    size = page.get_by_label("Size", exact=True)
    assert size.is_visible()
    assert not page.get_by_label("Width").is_visible() and not page.get_by_label("Height").is_visible()
    assert offered(page) == ["64 × 64 (square)", "64 × 32 (landscape 2:1)", "32 × 48 (portrait 2:3)"]
    assert size.input_value() == "64x64"

    size.select_option(label="32 × 48 (portrait 2:3)")
    assert (page.locator("#width").input_value(), page.locator("#height").input_value()) == ("32", "48")

    page.get_by_label("Model", exact=True).select_option("xl")  # another model: its own sizes, its default chosen
    assert offered(page) == ["1024 × 1024 (square)", "896 × 1152 (portrait 7:9)", "1152 × 896 (landscape 9:7)"]
    assert size.input_value() == "1024x1024" and page.locator("#width").input_value() == "1024"

    page.get_by_label("Model", exact=True).select_option("tiny")
    size.select_option("64x32")
    page.get_by_label("Prompt", exact=True).fill("a wide red square")
    page.get_by_role("button", name="Create").click()  # the chosen size is what is sent (no worker: it waits)
    card = page.locator(".try").filter(has_text="a wide red square")
    card.wait_for()
    assert " · 64×32 · " in described(card)
    assert page.locator("#studio-error").is_hidden()


def test_the_seed_is_typeable_and_random_is_a_toggle_next_to_it(page, live_server, make_user):
    make_user("ada@example.com")
    sign_in(page, live_server)
    page.locator("summary").click()
    seed, random = page.get_by_label("Seed", exact=True), page.get_by_label("Random", exact=True)
    assert random.is_checked() and seed.input_value() == "" and seed.is_editable()

    seed.press_sequentially("42")  # typing a number turns Random off, and keeps what was typed
    assert seed.input_value() == "42" and not random.is_checked()
    random.check()
    assert seed.input_value() == ""
    random.uncheck()  # a fixed seed to see and keep
    assert seed.input_value().isdigit() and 0 <= int(seed.input_value()) <= 2**32 - 1
    seed.fill("")
    assert random.is_checked()

    seed.fill("7")
    page.get_by_label("Prompt", exact=True).fill("a green circle")
    page.get_by_role("button", name="Create").click()
    card = page.locator(".try").filter(has_text="a green circle")
    card.wait_for()
    assert described(card).endswith("· seed 7") and seed.input_value() == "7" and not random.is_checked()
    random.check()
    page.get_by_label("Prompt", exact=True).fill("a blue circle")
    page.get_by_role("button", name="Create").click()
    other = page.locator(".try").filter(has_text="a blue circle")
    other.wait_for()
    assert not described(other).endswith("· seed 7")  # the server picked a new one
    assert seed.input_value() == "" and random.is_checked()
