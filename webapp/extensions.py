"""Flask extensions, created without an app and bound in ``create_app``."""
from __future__ import annotations

import os

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase

from .prompt_search import include_name


class Base(DeclarativeBase):
    """Declarative base for every table."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate(include_name=include_name)  # autogenerate leaves the full-text index alone
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite in WAL mode: the web and the workers write the same file without blocking readers."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# A SQLite connection opened while its files could not be written stays read-only for good, even once they
# can be again: such a connection is remembered at connect, and replaced at checkout once the file is writable.
SQLITE_STUCK_ERRORS = ("attempt to write a readonly database", "disk i/o error")


def _sqlite_file(dbapi_connection) -> str | None:
    """The main database file of a SQLite connection (None in memory)."""
    for _, name, path in dbapi_connection.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return path or None
    return None


@event.listens_for(Engine, "connect")
def _note_read_only_sqlite(dbapi_connection, connection_record) -> None:
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    path = _sqlite_file(dbapi_connection)
    if path and not os.access(path, os.W_OK):
        connection_record.info["easel_read_only_file"] = path


@event.listens_for(Engine, "checkout")
def _replace_read_only_sqlite(dbapi_connection, connection_record, connection_proxy) -> None:
    path = connection_record.info.get("easel_read_only_file")
    if path and os.access(path, os.W_OK):
        raise DisconnectionError("the SQLite file is writable again")  # the pool opens a fresh connection


@event.listens_for(Engine, "handle_error")
def _replace_stuck_sqlite_connection(context) -> None:
    """After those errors the connection is dropped like a lost one, never reused."""
    if context.engine is None or context.engine.dialect.name != "sqlite":
        return
    if any(text in str(context.original_exception).lower() for text in SQLITE_STUCK_ERRORS):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False
