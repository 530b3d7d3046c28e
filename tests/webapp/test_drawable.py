"""What the chosen model can draw (webapp/drawable.py, models/vocabulary.py): the hint on a result whose prompt
asks for more, the styles offered, and the bundled model's word list against its training captions."""
from __future__ import annotations

import random
import re
from pathlib import Path

from models.catalog import load_catalog
from models.training import data
from models.vocabulary import vocabulary_of
from tests.support import sign_in
from webapp.drawable import drawing_hint, offered_styles
from webapp.extensions import db
from webapp.tables import Image

CATALOG = Path(__file__).parents[1] / "catalog.toml"  # the tests' catalog


def test_the_bundled_models_words_are_exactly_its_training_captions_words():
    rng = random.Random(0)
    words = {word for scene in (data.random_scene(rng) for _ in range(3000))
             for word in re.findall(r"[a-z]+", data.caption(scene, rng))}
    tiny = load_catalog(CATALOG)["easel-tiny"]
    assert vocabulary_of(tiny.path).words == words


def test_the_hint_names_what_the_model_cannot_draw_with_an_example():
    catalog = load_catalog(CATALOG)
    tiny = catalog["easel-tiny"]
    hint = drawing_hint(tiny, "A Dog sitting in a castle, dog, 4k")
    assert hint == (f"{tiny.label} knows only shapes, colours and places, so it cannot draw “dog”, “sitting”, "
                    "“castle” and more. Try: “a red star in the top left, blue background”.")
    assert drawing_hint(tiny, "a small Green circle in the upper left corner, on white") is None
    assert drawing_hint(catalog["missing-model"], "a dog") is None  # no word list: any words
    assert offered_styles(tiny) == ["none", "pixel-art"]  # the others' words mean nothing to it
    assert offered_styles(catalog["missing-model"]) == ["none", "artstation", "pencil", "low-poly", "watercolor",
                                                        "unreal", "pixel-art"]


def test_a_finished_generation_carries_the_hint_in_its_state(app, make_user, make_image):
    ada = make_user("ada@example.com")
    cat = make_image(ada, prompt="a cat on a blue background")
    star = make_image(ada, prompt="a red star on a blue background")
    client = sign_in(app, "ada@example.com")
    with app.app_context():
        ids = [db.session.get(Image, image).generation_id for image in (cat, star)]
    hints = [client.get(f"/api/generations/{gid}").get_json()["hint"] for gid in ids]
    assert "cannot draw “cat”" in hints[0] and hints[1] is None
    assert "cannot draw “cat”" in client.get(f"/generations/{ids[0]}").get_data(as_text=True)
