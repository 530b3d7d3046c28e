"""prompt search works again where 8d5dae4e0a4f's rebuild of generations dropped its triggers

Before 8d5dae4e0a4f kept them, its SQLite rebuild of ``generations`` dropped the three triggers that keep
``generations_fts`` in step, so the index stayed empty (or stale) and every search found nothing. This
creates the full-text table if it is missing, the triggers afresh, and rebuilds the index from the rows.
On PostgreSQL the GIN index was never lost (ALTER TABLE in place); it is created only if missing.
The statements are frozen here, as in ea18d76a94d7, so this file keeps meaning what it meant.

Revision ID: 5e0c9a7b2d14
Revises: 1d49fd47d259
Create Date: 2026-12-06 22:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5e0c9a7b2d14'
down_revision = '1d49fd47d259'
branch_labels = None
depends_on = None

TRIGGERS = ("insert", "delete", "update")
SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS generations_fts USING fts5(prompt, content='generations', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')",
    *(f"DROP TRIGGER IF EXISTS generations_fts_{name}" for name in TRIGGERS),
    "CREATE TRIGGER generations_fts_insert AFTER INSERT ON generations BEGIN "
    "INSERT INTO generations_fts(rowid, prompt) VALUES (new.rowid, new.prompt); END",
    "CREATE TRIGGER generations_fts_delete AFTER DELETE ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt); END",
    "CREATE TRIGGER generations_fts_update AFTER UPDATE OF prompt ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt); "
    "INSERT INTO generations_fts(rowid, prompt) VALUES (new.rowid, new.prompt); END",
    "INSERT INTO generations_fts(generations_fts) VALUES ('rebuild')",  # index every prompt already there
]
POSTGRESQL_CREATE = ("CREATE INDEX IF NOT EXISTS ix_generations_prompt_search ON generations "
                     "USING gin (to_tsvector('simple', prompt))")


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_CREATE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(POSTGRESQL_CREATE)


def downgrade():
    pass  # the triggers and index belong to ea18d76a94d7's schema: the revision before this one has them too
