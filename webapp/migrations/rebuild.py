"""A table rebuild that keeps what hangs on the table: every migration that batch-alters an existing table uses it.

SQLite alters little in place, so Alembic's batch mode copies a table into a new one, drops the old one and
renames the copy. Indexes and constraints come along (Alembic reflects them), but the table's triggers die
with the old table, and a full-text index with external content (FTS5 ``content='<table>'``) keeps the old
rowids. ``rebuild_table`` wraps ``op.batch_alter_table``: it reads the table's triggers before, creates again
those that are gone after, and rebuilds every external-content FTS5 index on the table from its rows.

It knows no table by name, so what it does never changes with the models (migrations stay what they were).
On other databases it is ``op.batch_alter_table`` itself (PostgreSQL alters in place).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context, op
from alembic.operations import BatchOperations


def _triggers(bind, table_name: str) -> dict[str, str]:
    rows = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                                (table_name,))
    return dict(rows.fetchall())


def external_content_indexes(bind, table_name: str) -> list[str]:
    """The FTS5 tables whose content is ``table_name`` (SQLite)."""
    content = re.compile(r"content\s*=\s*['\"]?" + re.escape(table_name) + r"['\"]?\s*[,)]", re.IGNORECASE)
    rows = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'")
    return [name for name, sql in rows if re.search(r"USING\s+fts5", sql, re.IGNORECASE) and content.search(sql)]


def restore(bind, table_name: str, triggers: dict[str, str]) -> None:
    """Create again the ``triggers`` (name: SQL) that are gone, and rebuild the full-text indexes on the table."""
    present = _triggers(bind, table_name)
    for name, sql in triggers.items():
        if name not in present:
            op.execute(sql)
    for index in external_content_indexes(bind, table_name):
        op.execute(f"INSERT INTO \"{index}\"(\"{index}\") VALUES ('rebuild')")  # rowids may have moved


@contextmanager
def rebuild_table(table_name: str, **kwargs) -> Iterator[BatchOperations]:
    """``op.batch_alter_table(table_name, **kwargs)`` that leaves the table's triggers and full-text index working."""
    bind = None if context.is_offline_mode() else op.get_bind()
    if bind is None or bind.dialect.name != "sqlite":  # offline (SQL scripts): what batch mode writes, no more
        with op.batch_alter_table(table_name, **kwargs) as batch_op:
            yield batch_op
        return
    triggers = _triggers(bind, table_name)
    with op.batch_alter_table(table_name, **kwargs) as batch_op:
        yield batch_op
    restore(bind, table_name, triggers)
