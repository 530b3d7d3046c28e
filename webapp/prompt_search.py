"""Prompt search: the database's own full-text index (SQLite FTS5, PostgreSQL GIN) behind one filter.

Both databases split prompts into words the same way (letters and digits, case-insensitive, no stemming,
accents kept), so a search answers alike on either. The index objects are declared here as DDL, run
after ``generations`` is created (``create_all``) and by the migration; the ORM cannot declare them.
This module knows only the table's name, so ``tables`` can import it without a cycle.
"""
from __future__ import annotations

import re

from sqlalchemy import DDL, Table, event, text
from sqlalchemy.sql.elements import TextClause

MAX_TERMS = 8  # a longer query costs more and rarely narrows further
MAX_TERM_LENGTH = 64
_WORD = re.compile(r"[^\W_]+")  # what both tokenizers (FTS5 unicode61, PostgreSQL's parser) call a word

FTS_TABLE = "generations_fts"
# FTS5 keeps its index in these shadow tables; the schema comparison must not mistake them for strays.
FTS_SHADOW_TABLES = frozenset({name for table in (FTS_TABLE, "generation_prompts_fts") for name in (
    table, *(f"{table}_{part}" for part in ("data", "idx", "docsize", "config", "content")))})
GIN_INDEX = "ix_generations_prompt_search"

# External content: FTS5 stores only its index and reads prompts from ``generations`` by rowid.
# ``remove_diacritics 0`` matches PostgreSQL's 'simple' configuration, which keeps accents.
SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE generations_fts USING fts5(prompt, content='generations', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER generations_fts_insert AFTER INSERT ON generations BEGIN "
    "INSERT INTO generations_fts(rowid, prompt) VALUES (new.rowid, new.prompt); END",
    "CREATE TRIGGER generations_fts_delete AFTER DELETE ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt); END",
    "CREATE TRIGGER generations_fts_update AFTER UPDATE OF prompt ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt); "
    "INSERT INTO generations_fts(rowid, prompt) VALUES (new.rowid, new.prompt); END",
]
SQLITE_DROP = "DROP TABLE IF EXISTS generations_fts"  # its triggers go with ``generations``
POSTGRESQL_CREATE = ("CREATE INDEX IF NOT EXISTS ix_generations_prompt_search ON generations "
                     "USING gin (to_tsvector('simple', prompt))")

# Each image's own prompt (``generation_prompts.prompts``, a JSON list: wildcard picks and variants) is searched
# too. JSON keeps non-ASCII letters as ``\u`` escapes, so SQLite's index holds its own copy of the decoded text
# (``json_each``), one row per generation_prompts row (same rowid; ``generation_id`` is what searches read);
# PostgreSQL indexes the JSON's strings (``to_tsvector(regconfig, json)``). A migration that rebuilds
# ``generation_prompts`` on SQLite (rowids renumbered) must refill ``generation_prompts_fts`` after it, as
# c9e4b2a7d1f3's last statement does: ``rebuild_table`` refills only external-content indexes.
PICKS_FTS_TABLE = "generation_prompts_fts"
PICKS_GIN_INDEX = "ix_generation_prompts_search"
SQLITE_PICKS_CREATE = [
    "CREATE VIRTUAL TABLE generation_prompts_fts USING fts5(prompts, generation_id UNINDEXED, "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER generation_prompts_fts_insert AFTER INSERT ON generation_prompts BEGIN "
    "INSERT INTO generation_prompts_fts(rowid, prompts, generation_id) VALUES (new.rowid, "
    "(SELECT group_concat(value, ' ') FROM json_each(new.prompts)), new.generation_id); END",
    "CREATE TRIGGER generation_prompts_fts_delete AFTER DELETE ON generation_prompts BEGIN "
    "DELETE FROM generation_prompts_fts WHERE rowid = old.rowid; END",
    "CREATE TRIGGER generation_prompts_fts_update AFTER UPDATE OF prompts ON generation_prompts BEGIN "
    "DELETE FROM generation_prompts_fts WHERE rowid = old.rowid; "
    "INSERT INTO generation_prompts_fts(rowid, prompts, generation_id) VALUES (new.rowid, "
    "(SELECT group_concat(value, ' ') FROM json_each(new.prompts)), new.generation_id); END",
]
SQLITE_PICKS_DROP = "DROP TABLE IF EXISTS generation_prompts_fts"
POSTGRESQL_PICKS_CREATE = ("CREATE INDEX IF NOT EXISTS ix_generation_prompts_search ON generation_prompts "
                           "USING gin (to_tsvector('simple', prompts))")


def add_prompt_index(generations: Table) -> None:
    """Create (and drop) the full-text index objects together with the ``generations`` table."""
    for statement in SQLITE_CREATE:
        event.listen(generations, "after_create", DDL(statement).execute_if(dialect="sqlite"))
    event.listen(generations, "after_create", DDL(POSTGRESQL_CREATE).execute_if(dialect="postgresql"))
    event.listen(generations, "before_drop", DDL(SQLITE_DROP).execute_if(dialect="sqlite"))


def add_picks_index(generation_prompts: Table) -> None:
    """Create (and drop) the full-text index of each image's own prompt together with ``generation_prompts``."""
    for statement in SQLITE_PICKS_CREATE:
        event.listen(generation_prompts, "after_create", DDL(statement).execute_if(dialect="sqlite"))
    event.listen(generation_prompts, "after_create", DDL(POSTGRESQL_PICKS_CREATE).execute_if(dialect="postgresql"))
    event.listen(generation_prompts, "before_drop", DDL(SQLITE_PICKS_DROP).execute_if(dialect="sqlite"))


PG_MATCH = "to_tsvector('simple', generations.prompt) @@ to_tsquery('simple', :prompt_query)"
# one IN over a UNION, not an OR: PostgreSQL then uses both GIN indexes
PG_PICKS_MATCH = ("generations.id IN (SELECT matched.id FROM generations AS matched WHERE to_tsvector('simple', "
                  "matched.prompt) @@ to_tsquery('simple', :prompt_query) UNION SELECT generation_id FROM "
                  "generation_prompts WHERE to_tsvector('simple', generation_prompts.prompts) "
                  "@@ to_tsquery('simple', :prompt_query))")
SQLITE_MATCH = "generations.rowid IN (SELECT rowid FROM generations_fts WHERE generations_fts MATCH :prompt_query)"
SQLITE_PICKS_MATCH = ("(generations.rowid IN (SELECT rowid FROM generations_fts WHERE generations_fts MATCH :prompt_query) "
                      "OR generations.id IN (SELECT generation_id FROM generation_prompts_fts "
                      "WHERE generation_prompts_fts MATCH :prompt_query))")


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's filter: leave the full-text index objects out of the schema comparison."""
    if type_ == "table":
        return name not in FTS_SHADOW_TABLES
    if type_ == "index":
        return name not in (GIN_INDEX, PICKS_GIN_INDEX)
    return True


def search_terms(query: str) -> list[str]:
    """The words of a search box's text, lower-cased; every other character is only a separator."""
    return [word[:MAX_TERM_LENGTH] for word in _WORD.findall(query.lower())][:MAX_TERMS]


def prompt_filter(query: str, dialect: str, picks: bool = True) -> TextClause | None:
    """A WHERE clause on ``generations``: the prompt has every word, the last one as a prefix; or (``picks``) one
    of its images' own prompts has them (the words a wildcard or a variant put in: ``generation_prompts``).

    Args:
        query: what the person typed; any character is safe (only words reach the database, as a bound value).
        dialect: ``sqlite`` or ``postgresql``.
        picks: search the images' own prompts too (False: only ``generations.prompt``, as before c9e4b2a7d1f3).

    Returns:
        The clause, or None when the query has no words (no filtering).
    """
    terms = search_terms(query)
    if not terms:
        return None
    if dialect == "postgresql":
        # Same expressions as the GIN indexes, so the planner uses them.
        expression = " & ".join(f"'{term}'" for term in terms) + ":*"
        sql = PG_PICKS_MATCH if picks else PG_MATCH
    elif dialect == "sqlite":
        expression = " ".join(f'"{term}"' for term in terms) + "*"
        sql = SQLITE_PICKS_MATCH if picks else SQLITE_MATCH
    else:
        raise ValueError(f"prompt search supports sqlite and postgresql, not {dialect}")
    return text(sql).bindparams(prompt_query=expression)
