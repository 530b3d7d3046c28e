"""The database as ``make run`` builds it: the migrations give the models' schema, prompt search included, and
a migration that rebuilds a table keeps what hangs on it (triggers, the full-text index)."""
from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import column, func, select, table, text

from tests.support import ROOT, migrate, sign_in
from webapp import config, create_app, prompt_search
from webapp.extensions import db

SCRIPTS = ScriptDirectory(str(ROOT / "webapp" / "migrations"))
HEAD = SCRIPTS.get_current_head()
REVISIONS = [script.revision for script in reversed(list(SCRIPTS.walk_revisions()))]  # oldest first
SEARCH_SINCE = "ea18d76a94d7"  # collections and prompt search
REBUILDS_GENERATIONS = "8d5dae4e0a4f"  # SQLite rebuilds ``generations`` here
TRIGGERS = {re.match(r"CREATE TRIGGER (\w+)", statement).group(1): statement
            for statement in prompt_search.SQLITE_CREATE if statement.startswith("CREATE TRIGGER")}


def full_text_objects(conn) -> dict[str, str]:
    """Name: SQL of the prompt search's objects in the database (FTS5 table and triggers, or the GIN index)."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE name = ? "
                                    "OR (type = 'trigger' AND tbl_name = 'generations')", (prompt_search.FTS_TABLE,))
    else:
        rows = conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'generations' "
                                    "AND position('to_tsvector' in indexdef) > 0")
    return dict(rows.fetchall())


def assert_prompt_search_objects(conn) -> None:
    """Exactly the objects that ``webapp.prompt_search`` declares next to the models, as it declares them."""
    found = full_text_objects(conn)
    if conn.dialect.name == "sqlite":
        assert found == {prompt_search.FTS_TABLE: prompt_search.SQLITE_CREATE[0], **TRIGGERS}
    else:
        assert list(found) == [prompt_search.GIN_INDEX]
        assert "USING gin (to_tsvector('simple'::regconfig, prompt))" in found[prompt_search.GIN_INDEX]


SEARCHES_PICKS_SINCE = "c9e4b2a7d1f3"  # the images' own prompts (generation_prompts) are searched too


def found_prompts(conn, words: str, picks: bool = True) -> list[str]:
    """The prompts that the app's own search filter finds (``picks`` False: before the images' own prompts were)."""
    generations = table("generations", column("prompt"))
    query = select(generations.c.prompt).where(prompt_search.prompt_filter(words, conn.dialect.name, picks))
    return list(conn.scalars(query))


def assert_picks_search_objects(conn) -> None:
    """The index of the images' own prompts, as ``webapp.prompt_search`` declares it."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE name = ? OR "
                                    "(type = 'trigger' AND tbl_name = 'generation_prompts')",
                                    (prompt_search.PICKS_FTS_TABLE,))
        assert sorted(sql for _, sql in rows) == sorted(prompt_search.SQLITE_PICKS_CREATE)
    else:
        rows = conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                                    (prompt_search.PICKS_GIN_INDEX,))
        assert "USING gin (to_tsvector('simple'::regconfig, prompts))" in rows.scalar_one()


@pytest.mark.db
def test_the_migrated_database_is_the_models_schema_with_prompt_search(app):
    """Every test database is migrated; here the migrations' result is compared with the models."""
    with app.app_context(), db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == HEAD
        context = MigrationContext.configure(conn, opts={"include_name": prompt_search.include_name,
                                                         "compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, db.metadata) == []  # tables, columns, types, defaults, indexes, keys
        assert_prompt_search_objects(conn)  # what the comparison leaves out
        assert_picks_search_objects(conn)


@pytest.mark.db
def test_every_migration_keeps_prompt_search_working(app_env, empty_database, monkeypatch):
    """Revision by revision from an empty database (and back over the rebuild), no row is lost and every
    prompt stays findable."""
    monkeypatch.setenv("DATABASE_URL", empty_database)
    flask_app = create_app({**config.from_environment(), "TESTING": True})
    prompts: dict[str, str] = {}

    def add_generation(conn, word: str) -> None:
        """A generation and its image, in the initial schema's columns (every later one has a default)."""
        prompts[word] = f"a {word} on the hill"
        row = {"generation": str(uuid.uuid4()), "image": str(uuid.uuid4()), "prompt": prompts[word],
               "at": datetime(2026, 1, 1)}
        conn.execute(text(
            "INSERT INTO generations (id, user_id, status, prompt, negative_prompt, style, model, width, height, "
            "steps, guidance, seed, num_images, created_at) VALUES (:generation, 1, 'succeeded', :prompt, '', "
            "'none', 'easel-tiny', 64, 64, 4, 5.0, 1, 1, :at)"), row)
        conn.execute(text(
            'INSERT INTO images (id, generation_id, user_id, "index", storage_key, thumbnail_key, width, height, '
            "is_public, is_hidden, is_starred, created_at) VALUES (:image, :generation, 1, 0, 'k', 't', 64, 64, "
            "false, false, false, :at)"), row)

    def check(revision: str, searchable: bool = True) -> None:
        picks = REVISIONS.index(revision) >= REVISIONS.index(SEARCHES_PICKS_SINCE)
        with db.engine.connect() as conn:
            for name in ("users", "generations", "images"):  # a rebuild drops a table: nothing may go with it
                count = conn.scalar(select(func.count()).select_from(table(name)))
                assert count == (1 if name == "users" else len(prompts)), f"{name} lost rows at {revision}"
            if not searchable:
                return
            for word, prompt in prompts.items():
                assert found_prompts(conn, word, picks) == [prompt], f"{word!r} is not found at {revision}"
            assert_prompt_search_objects(conn)

    with flask_app.app_context():
        try:
            searchable = False
            for number, revision in enumerate(REVISIONS):
                upgrade(revision=revision)
                with db.engine.begin() as conn:
                    if number == 0:
                        conn.exec_driver_sql(
                            "INSERT INTO users (id, email, display_name, password_hash, is_admin, is_banned, "
                            "notify_by_email, session_version, created_at) VALUES "
                            "(1, 'ada@example.com', 'Ada', 'x', false, false, false, 0, '2026-01-01 00:00:00')")
                    add_generation(conn, f"step{chr(ord('a') + number)}")
                searchable = searchable or revision == SEARCH_SINCE
                check(revision, searchable)
            before_rebuild = REVISIONS[REVISIONS.index(REBUILDS_GENERATIONS) - 1]
            downgrade(revision=before_rebuild)  # the rebuild undone is a rebuild too
            check(before_rebuild)
            upgrade()
            with db.engine.begin() as conn:
                add_generation(conn, "backagain")
            check(HEAD)
        finally:
            db.engine.dispose()


REPAIRS_SEARCH = "5e0c9a7b2d14"  # gives back prompt search to installs that lost it


@pytest.fixture
def lost_search(app_env: dict[str, str]) -> None:
    """This test's SQLite database as an install that ran 8d5dae4e0a4f before it kept the full-text triggers:
    the triggers gone and the index empty (the test then takes it back to before 5e0c9a7b2d14)."""
    path = app_env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)
        for name in TRIGGERS:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("INSERT INTO generations_fts(generations_fts) VALUES ('delete-all')")


def gallery_page(client, words: str) -> str:
    return client.get("/gallery", query_string={"q": words}).get_data(as_text=True)


def test_the_upgrade_makes_search_find_what_an_install_that_lost_it_holds(lost_search, app, app_env, make_user,
                                                                           make_image, tmp_path):
    ada = make_user("ada@example.com")
    octopus = make_image(ada, prompt="violet octopus in the sea")
    client = sign_in(app, "ada@example.com")
    assert octopus not in gallery_page(client, "octopus")  # what such an install shows: nothing
    with app.app_context():
        db.engine.dispose()
        # the install as it was before the repair (the later revisions' columns and tables set aside, rows kept)
        downgrade(revision=SCRIPTS.get_revision(REPAIRS_SEARCH).down_revision)
        db.engine.dispose()
    migrate(app_env["DATABASE_URL"], tmp_path / "instance")  # `make run` after updating Easel
    assert octopus in gallery_page(client, "octopus")
    squid = make_image(ada, prompt="violet squid")  # and the triggers keep it so
    html = gallery_page(client, "violet")
    assert octopus in html and squid in html
    assert squid not in gallery_page(client, "octopus")


@pytest.mark.db
def test_gallery_search_finds_a_persons_prompts_on_the_migrated_database(app, make_user, make_image):
    """``GET /gallery?q=…`` on a database built by ``webapp.launch.upgrade_database``, as ``make run`` builds it."""
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    octopus = make_image(ada, prompt="A violet octopus, in the sea")
    circle = make_image(ada, prompt="a red circle")
    bobs = make_image(bob, prompt="bob's violet octopus")
    client = sign_in(app, "ada@example.com")
    html = gallery_page(client, "Octopus")
    assert octopus in html and circle not in html and bobs not in html
    assert re.search(r'id="result-count">1 image match', html)
    html = gallery_page(client, "sea VIOL")  # every word, the last one may be the start of a word
    assert octopus in html and circle not in html
    html = gallery_page(client, "red")
    assert circle in html and octopus not in html


def test_every_migration_alters_an_existing_table_through_rebuild_table():
    """The rule, for migrations to come: ``op.batch_alter_table`` only on a table its own file creates (Alembic
    writes that for a new table's indexes); an existing table goes through ``rebuild_table``, which keeps its
    triggers and full-text index when SQLite rebuilds it."""
    for path in sorted((ROOT / "webapp" / "migrations" / "versions").glob("*.py")):
        source = path.read_text()
        created = set(re.findall(r"op\.create_table\(\s*['\"](\w+)", source))
        altered = set(re.findall(r"op\.batch_alter_table\(\s*['\"](\w+)", source))
        assert altered <= created, f"{path.name}: use rebuild_table for {sorted(altered - created)}"
