"""Faults for the fault tests: the database made unwritable or unreachable for a while, Redis paused."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url


def _chattr(flag: str, paths: list[Path]) -> bool:
    """``chattr +i``/``-i`` (root on ext4 and most file systems); False where it is not allowed."""
    try:
        return subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def sqlite_unwritable(database_file: str | os.PathLike) -> Iterator[None]:
    """The SQLite database cannot be written, as when its files lose their write permission.

    As root (whom permissions do not stop) the database and its WAL are made immutable (``chattr +i``):
    every write fails at once, and connections opened meanwhile come up read-only. Elsewhere they are
    made 0444 and, since that spares connections already open, the write lock is held as well, so
    writers fail "database is locked" after their busy timeout. The shared-memory index (``-shm``)
    stays writable: every process maps it.
    """
    path = Path(database_file)
    files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    holder = None
    immutable = _chattr("+i", files)
    modes = {p: p.stat().st_mode for p in files}
    if not immutable:
        holder = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        for p in files:
            p.chmod(0o444)
    try:
        yield
    finally:
        if immutable:
            _chattr("-i", files)
        else:
            for p, mode in modes.items():
                p.chmod(mode)
            holder.execute("ROLLBACK")
            holder.close()


@contextlib.contextmanager
def postgres_unreachable(database_url: str) -> Iterator[None]:
    """No connection to this PostgreSQL database: new ones are refused, open ones are terminated."""
    import psycopg

    url = make_url(database_url)
    name = url.database
    admin = url.set(database="postgres").render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", (name,))
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


@contextlib.contextmanager
def for_seconds(fault: contextlib.AbstractContextManager, seconds: float) -> Iterator[threading.Thread]:
    """Enter ``fault`` now and leave it ``seconds`` later in a thread, whatever the test does meanwhile."""
    entered = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with fault:
            entered.set()
            done.wait(seconds)

    thread = threading.Thread(target=hold, name="fault", daemon=True)
    thread.start()
    entered.wait(30)
    try:
        yield thread
    finally:
        thread.join(seconds + 30)
