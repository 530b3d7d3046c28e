"""gallery search finds each image's own prompt (generation_prompts); generations.style holds several styles

``generation_prompts.prompts`` (the prompt each image was made from, when wildcards or variants made them differ)
gets a full-text index beside the generations' prompts: on SQLite an FTS5 table holding the decoded text (JSON
keeps non-ASCII letters as escapes) kept in step by three triggers and filled from the rows already there; on
PostgreSQL a GIN index on ``to_tsvector('simple', prompts)`` (the JSON's strings). ``generations.style`` grows
from 32 to 200 characters: A1111's ``styles`` list is kept as its names joined by ",", applied in order.
The statements are frozen here, as in ea18d76a94d7, so this file keeps meaning what it meant.

Revision ID: c9e4b2a7d1f3
Revises: c4d1e8f2a7b3
Create Date: 2026-12-07 05:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = 'c9e4b2a7d1f3'
down_revision = 'c4d1e8f2a7b3'
branch_labels = None
depends_on = None

TRIGGERS = ("insert", "delete", "update")
SQLITE_CREATE = [
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
    # index the rows already there
    "INSERT INTO generation_prompts_fts(rowid, prompts, generation_id) SELECT rowid, "
    "(SELECT group_concat(value, ' ') FROM json_each(generation_prompts.prompts)), generation_id "
    "FROM generation_prompts",
]
POSTGRESQL_CREATE = ("CREATE INDEX IF NOT EXISTS ix_generation_prompts_search ON generation_prompts "
                     "USING gin (to_tsvector('simple', prompts))")


def upgrade():
    with rebuild_table('generations', schema=None) as batch_op:  # keeps the full-text triggers
        batch_op.alter_column('style', existing_type=sa.String(length=32), type_=sa.String(length=200),
                              existing_nullable=False)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_CREATE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(POSTGRESQL_CREATE)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS generation_prompts_fts_{name}")
        op.execute("DROP TABLE IF EXISTS generation_prompts_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_generation_prompts_search")
    with rebuild_table('generations', schema=None) as batch_op:
        batch_op.alter_column('style', existing_type=sa.String(length=200), type_=sa.String(length=32),
                              existing_nullable=False)
