"""Prompt search on the database's own full-text index, alike on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from webapp.extensions import db
from webapp.gallery.search import GalleryFilters, gallery_query
from webapp.prompt_search import prompt_filter, search_terms
from webapp.tables import Generation, GenerationPrompts, Image

pytestmark = pytest.mark.db

PROMPTS = {
    "circle": "A Red circle on white",
    "square": "a blue square, red border",
    "forest": "Redwood forest at dawn",
    "city": "neon city at night",
}


@pytest.fixture
def gallery(app, make_user, make_image) -> dict:
    """Ada's four images (and one of Bob's that matches everything Ada's do)."""
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    ids = {name: make_image(ada, prompt=prompt) for name, prompt in PROMPTS.items()}
    make_image(bob, prompt="a red circle, a blue square, redwood forest, neon city")
    return {"user": ada, "ids": ids}


def found(app, gallery, words: str) -> set[str]:
    with app.app_context():
        images = db.session.scalars(gallery_query(gallery["user"], GalleryFilters(words=words)))
        names = {image_id: name for name, image_id in gallery["ids"].items()}
        return {names[image.id] for image in images}


MATCHES = [
    ("red at", set()),                         # "red" is not a word of "Redwood forest at dawn"
    ("redwood at", {"forest"}),
    ("red", {"circle", "square", "forest"}),   # the last word may be the start of a word
    ("RED circle", {"circle"}),                # case-insensitive, every word must be there
    ("circle red", {"circle"}),                # in any order
    ("redw", {"forest"}),                      # the last word may be the start of a word
    ("ed", set()),                             # never the middle of a word
    ("blue, border!", {"square"}),             # punctuation only separates words
    ("at", {"forest", "city"}),
    ("nothing like it", set()),
    ("", {"circle", "square", "forest", "city"}),   # no words: no filtering
    ("   ,;  ", {"circle", "square", "forest", "city"}),
]
QUERY_SYNTAX = [
    '"', "'", "red\"", "red'", "*", "red*", "NEAR(red circle)", "red AND", "OR", "NOT red", "red -blue", "^red",
    "red:*", "red & | !", "(red", "red)", "col:red", "prompt:red", "\\", "%_", "'; DROP TABLE images; --",
    "red\u0000circle", "😀 red", "a" * 500, " ".join(["red"] * 50),
]


def test_search_matches_whole_words(app, gallery):
    for words, expected in MATCHES:
        assert found(app, gallery, words) == expected, words


def test_query_syntax_in_the_search_box_is_only_text(app, gallery):
    for words in QUERY_SYNTAX:
        assert found(app, gallery, words) <= set(PROMPTS), words  # never raises
    assert found(app, gallery, 'NOT "red') == set()  # NOT is a word here, and no prompt has it
    assert found(app, gallery, "(red) circle*") == {"circle"}
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Image)) == 5  # nothing dropped


def test_the_index_follows_new_changed_and_deleted_prompts(app, gallery, make_image):
    extra = make_image(gallery["user"], prompt="violet octopus")
    gallery["ids"]["octopus"] = extra
    assert found(app, gallery, "octopus") == {"octopus"}
    with app.app_context():
        generation_id = db.session.get(Image, extra).generation_id
        db.session.execute(update(Generation).where(Generation.id == generation_id).values(prompt="violet squid"))
        db.session.commit()
    assert found(app, gallery, "octopus") == set()
    assert found(app, gallery, "squid") == {"octopus"}
    with app.app_context():
        db.session.delete(db.session.get(Generation, generation_id))
        db.session.commit()
    assert found(app, gallery, "violet") == set()


def test_the_words_an_image_was_made_from_are_found(app, gallery, make_image):
    """Words that came from a wildcard list or a {a|b} pick (generation_prompts) are found, accents kept, and the
    index follows a change and a delete; another person's picks stay theirs."""
    extra = make_image(gallery["user"], prompt="a __animal__ by the sea")
    gallery["ids"]["picked"] = extra
    with app.app_context():
        generation_id = db.session.get(Image, extra).generation_id
        db.session.add(GenerationPrompts(generation_id=generation_id, prompts=["a narwhal by the sea",
                                                                                "a pelican by the sea, café"]))
        db.session.commit()
    assert found(app, gallery, "narwhal") == {"picked"}
    assert found(app, gallery, "pelican sea") == {"picked"}  # a template's word and a pick's together
    assert found(app, gallery, "café") == {"picked"} and found(app, gallery, "caf") == {"picked"}
    assert found(app, gallery, "u00e9") == set()  # the JSON's escapes are not words
    assert found(app, gallery, "animal") == {"picked"}  # the template is still searched
    with app.app_context():
        db.session.execute(update(GenerationPrompts).where(GenerationPrompts.generation_id == generation_id)
                           .values(prompts=["a walrus by the sea"]))
        db.session.commit()
    assert found(app, gallery, "narwhal") == set() and found(app, gallery, "walrus") == {"picked"}
    with app.app_context():
        db.session.delete(db.session.get(Generation, generation_id))
        db.session.commit()
    assert found(app, gallery, "walrus") == set()


def test_terms_are_words_only():
    assert search_terms('Red "circle" AND:* *blue* naïve_x') == ["red", "circle", "and", "blue", "naïve", "x"]
    assert len(search_terms(" ".join(f"w{n}" for n in range(30)))) == 8


def test_search_uses_the_index(app, gallery):
    """The plan reads the full-text index, not every prompt."""
    with app.app_context():
        dialect = db.session.get_bind().dialect.name
        # The prompt filter alone: with the whole gallery query a tiny table may rightly be read another way.
        query = select(Generation.id).where(prompt_filter("red circle", dialect))
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        connection = db.session.connection()
        if dialect == "postgresql":
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table is otherwise scanned anyway
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))
            assert "ix_generations_prompt_search" in plan and "ix_generation_prompts_search" in plan, plan
        else:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
            plan = "\n".join(row[-1] for row in rows)
            assert "generations_fts VIRTUAL TABLE" in plan and "generation_prompts_fts VIRTUAL TABLE" in plan, plan
        db.session.rollback()
    assert prompt_filter("", "sqlite") is None
    assert prompt_filter("", "postgresql") is None
