"""Backups: one tar archive with the database, every stored file, the queue weights and a manifest.

The database is a consistent snapshot taken first (SQLite: its online backup API; PostgreSQL: ``pg_dump``
inside an exported snapshot, the counts read in the same snapshot); the files are copied after it, so none is
older than the rows. ``manifest.json`` lists every member with its size and SHA-256, the counts and the
schema revision; ``manifest.sha256`` guards the manifest itself. ``verify`` reads everything back against
them; ``restore`` verifies first, refuses a site that has accounts unless forced, writes the files, replaces
the database, runs the migrations forward and copies the queue weights back into Redis.

Archives ending in ``.gz`` are gzip-compressed; others are plain tar (the images are compressed already).
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import mimetypes
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url

from . import services
from .config import child_environment
from .extensions import db
from .queues import FAIR_WEIGHTS

FORMAT = 1
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sha256"
WEIGHTS = "queue_weights.json"
FILES = "files/"
COUNTED = ("users", "generations", "images", "uploads", "collections", "api_tokens")
CHUNK = 1 << 20


class BackupError(RuntimeError):
    """The archive or the site is not fit for this: the message says why; nothing was changed."""


@dataclass
class Report:
    """What an archive holds: its manifest's counts and revision, and the lines printed about it."""

    manifest: dict
    lines: list[str] = field(default_factory=list)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _url() -> URL:
    return make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])


def _dialect() -> str:
    return "postgresql" if _url().get_backend_name() == "postgresql" else "sqlite"


def _pg_command(binary: str) -> tuple[list[str], dict[str, str]]:
    """``pg_dump``/``psql`` with the site's connection; the password goes in the environment, never argv."""
    path = shutil.which(binary)
    if path is None:
        raise BackupError(f"{binary} is not installed: PostgreSQL backups need the PostgreSQL client tools")
    url = _url()
    argv = [path, "--host", url.host or "127.0.0.1", "--port", str(url.port or 5432), "--dbname", url.database or ""]
    if url.username:
        argv += ["--username", url.username]
    env = child_environment(PGCONNECT_TIMEOUT="10", **({"PGPASSWORD": str(url.password)} if url.password else {}))
    return argv, env


def _revision_of(connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _counts(connection) -> dict[str, int]:
    present = set(inspect(connection).get_table_names())
    return {name: int(connection.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar())  # noqa: S608 (fixed names)
            for name in COUNTED if name in present}


def _snapshot_sqlite(workdir: Path) -> tuple[Path, dict[str, int], str | None]:
    """A copy of the SQLite database through its online backup API (a consistent snapshot while others write)."""
    target = workdir / "database.sqlite"
    source = sqlite3.connect(_url().database, timeout=30)
    try:
        copy = sqlite3.connect(target)
        with copy:
            source.backup(copy)
        copy.close()
    finally:
        source.close()
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as connection:
            return target, _counts(connection), _revision_of(connection)
    finally:
        engine.dispose()


def _snapshot_postgresql(workdir: Path) -> tuple[Path, dict[str, int], str | None]:
    """``pg_dump`` (plain SQL) of an exported snapshot; the counts and the revision read in that same snapshot."""
    target = workdir / "database.sql"
    argv, env = _pg_command("pg_dump")
    with db.engine.connect() as connection:
        connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar()
        counts, revision = _counts(connection), _revision_of(connection)
        with open(target, "wb") as out:
            done = subprocess.run([*argv, "--format=plain", "--no-owner", "--no-privileges", f"--snapshot={snapshot}"],
                                  stdout=out, stderr=subprocess.PIPE, env=env, timeout=3600, check=False)
        connection.rollback()
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.decode(errors='replace').strip()[-500:]}")
    return target, counts, revision


def _weights() -> dict[str, float]:
    raw = services.redis().hgetall(FAIR_WEIGHTS)
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}


def _add(archive: tarfile.TarFile, name: str, data: bytes, mtime: float | None = None) -> dict:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime or time.time()), 0o600
    archive.addfile(info, io.BytesIO(data))
    return {"name": name, "size": len(data), "sha256": _sha256(data)}


def _add_file(archive: tarfile.TarFile, name: str, path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    archive.add(path, arcname=name, recursive=False)
    return {"name": name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def _mode(path: Path, writing: bool) -> str:
    return ("w:gz" if writing else "r:gz") if path.name.endswith(".gz") else ("w" if writing else "r:")


def create(path: Path, echo: Callable[[str], None] = print) -> Report:
    """Write the archive at ``path`` (through a temporary file beside it: a failed backup leaves nothing)."""
    path = Path(path)
    if path.exists():
        raise BackupError(f"{path} exists already: choose a new file name")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory")
    dialect = _dialect()
    storage = services.storage()
    partial = path.with_name(f".{path.name}.partial")
    with tempfile.TemporaryDirectory(prefix="easel-backup-") as work:
        snapshot, counts, revision = (_snapshot_postgresql if dialect == "postgresql" else _snapshot_sqlite)(Path(work))
        echo(f"database: {dialect} snapshot at revision {revision or 'none'}")
        members = []
        try:
            with tarfile.open(partial, _mode(path, writing=True)) as archive:
                members.append(_add_file(archive, "database/" + snapshot.name, snapshot))
                snapshot.unlink()
                files = 0
                for key, mtime in storage.list(""):
                    try:
                        data = storage.open(key)
                    except FileNotFoundError:  # deleted since it was listed: the snapshot may still name it
                        continue
                    members.append({**_add(archive, FILES + key, data, mtime), "key": key})
                    files += 1
                weights = _weights()
                members.append(_add(archive, WEIGHTS, json.dumps(weights, sort_keys=True).encode()))
                manifest = {
                    "format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "database": {"dialect": dialect, "member": "database/" + snapshot.name, "revision": revision},
                    "counts": {**counts, "files": files, "queue_weights": len(weights)},
                    "members": members,
                }
                body = json.dumps(manifest, indent=1, sort_keys=True).encode()
                _add(archive, MANIFEST, body)
                _add(archive, MANIFEST_SUM, f"{_sha256(body)}  {MANIFEST}\n".encode())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    report = Report(manifest)
    report.lines = [f"{name}: {count}" for name, count in manifest["counts"].items()]
    return report


@contextmanager
def _open(path: Path) -> Iterator[tarfile.TarFile]:
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    try:
        with tarfile.open(path, _mode(path, writing=False)) as archive:
            yield archive
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BackupError(f"{path} is not a readable Easel archive: {exc}") from exc


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    if handle is None:
        raise BackupError(f"{member.name} is not a file")
    return handle.read()


def _known_revisions() -> tuple[set[str], set[str]]:
    """Every revision the migrations know, and the heads."""
    from alembic.script import ScriptDirectory

    config = current_app.extensions["migrate"].migrate.get_config()
    scripts = ScriptDirectory.from_config(config)
    return {rev.revision for rev in scripts.walk_revisions()}, set(scripts.get_heads())


def verify(path: Path, extract_to: Path | None = None) -> Report:
    """Check every member against the manifest (and the manifest against its checksum); nothing is changed.

    Args:
        path: the archive.
        extract_to: when given, the members are also written there (``restore`` reads them back from there).

    Raises:
        BackupError: a checksum differs, a member is missing or extra, or the schema is unknown to this Easel.
    """
    with _open(path) as archive:
        members = {member.name: member for member in archive.getmembers()}
        if MANIFEST not in members or MANIFEST_SUM not in members:
            raise BackupError("the archive has no manifest: it is not an Easel backup")
        body = _read(archive, members[MANIFEST])
        expected = _read(archive, members[MANIFEST_SUM]).decode(errors="replace").split()[:1]
        if [_sha256(body)] != expected:
            raise BackupError("the manifest does not match its checksum: the archive is damaged")
        try:
            manifest = json.loads(body)
        except ValueError as exc:
            raise BackupError("the manifest is not JSON: the archive is damaged") from exc
        if manifest.get("format") != FORMAT:
            raise BackupError(f"archive format {manifest.get('format')!r} is not one this Easel reads ({FORMAT})")
        listed = {entry["name"]: entry for entry in manifest["members"]}
        extra = set(members) - set(listed) - {MANIFEST, MANIFEST_SUM}
        if extra:
            raise BackupError(f"the archive holds members its manifest does not list: {sorted(extra)[:5]}")
        for name, entry in listed.items():
            member = members.get(name)
            if member is None or not member.isfile():
                raise BackupError(f"{name} is missing from the archive")
            handle = archive.extractfile(member)
            digest, size = hashlib.sha256(), 0
            out = None
            if extract_to is not None:
                target = (extract_to / name).resolve()
                if extract_to.resolve() not in target.parents:
                    raise BackupError(f"{name}: not a name an Easel archive holds")
                target.parent.mkdir(parents=True, exist_ok=True)
                out = open(target, "wb")
            try:
                for chunk in iter(functools.partial(handle.read, CHUNK), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    if out is not None:
                        out.write(chunk)
            finally:
                if out is not None:
                    out.close()
            if digest.hexdigest() != entry["sha256"] or size != entry["size"]:
                raise BackupError(f"{name} does not match its checksum: the archive is damaged")
    revision = manifest["database"].get("revision")
    known, heads = _known_revisions()
    if revision is not None and revision not in known:
        raise BackupError(f"the database is at schema revision {revision}, which this Easel does not know "
                          "(made by a newer version?): upgrade Easel first")
    report = Report(manifest)
    report.lines = [f"{name}: {count}" for name, count in manifest["counts"].items()]
    report.lines.append(f"schema revision: {revision or 'none'}"
                        + ("" if revision in heads else f" (migrations will bring it to {', '.join(sorted(heads))})"))
    return report


def site_is_empty() -> bool:
    """No accounts and no generations (a freshly started site; a database without tables counts too)."""
    with db.engine.connect() as connection:
        counts = _counts(connection)
    return not counts.get("users") and not counts.get("generations")


def _restore_sqlite(snapshot: Path) -> None:
    target = _url().database
    db.session.remove()
    db.engine.dispose()
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(snapshot)
    try:
        copy = sqlite3.connect(target, timeout=30)
        try:
            source.backup(copy)  # one step: other connections see the old database or the new one
        finally:
            copy.close()
    finally:
        source.close()


def _restore_postgresql(snapshot: Path) -> None:
    """The dump replaces the schema in one transaction: on any error, the database is as it was."""
    argv, env = _pg_command("psql")
    db.session.remove()
    db.engine.dispose()
    prelude = b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n"
    with open(snapshot, "rb") as dump:
        script = prelude + dump.read()
    done = subprocess.run([*argv, "--no-psqlrc", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1",
                           "--file", "-"], input=script, capture_output=True, env=env, timeout=3600, check=False)
    if done.returncode != 0:
        raise BackupError(f"psql could not load the database: {done.stderr.decode(errors='replace').strip()[-500:]}")


def restore(path: Path, force: bool = False, echo: Callable[[str], None] = print) -> Report:
    """Restore the archive into this site: verify, check it is empty (unless ``force``), files, database, weights.

    Raises:
        BackupError: the archive is damaged or unknown, the site is not empty, or the database is of the
            other kind (a SQLite archive restores into a SQLite site, a PostgreSQL one into PostgreSQL).
    """
    with tempfile.TemporaryDirectory(prefix="easel-restore-") as work:
        work_dir = Path(work)
        report = verify(path, extract_to=work_dir)
        manifest = report.manifest
        dialect = manifest["database"]["dialect"]
        if dialect != _dialect():
            raise BackupError(f"this archive holds a {dialect} database and this site uses {_dialect()}: "
                              f"restore it into a site on {dialect}")
        if not force and not site_is_empty():
            raise BackupError("this site has accounts or generations already: restore into an empty site, "
                              "or add --force to replace them")
        echo("archive verified")
        storage = services.storage()
        for entry in manifest["members"]:
            if entry["name"].startswith(FILES):
                key = entry["name"][len(FILES):]
                data = (work_dir / entry["name"]).read_bytes()
                storage.save(key, data, mimetypes.guess_type(key)[0] or "application/octet-stream")
        echo(f"files: {manifest['counts'].get('files', 0)} written")
        snapshot = work_dir / manifest["database"]["member"]
        (_restore_postgresql if dialect == "postgresql" else _restore_sqlite)(snapshot)
    from flask_migrate import upgrade

    upgrade()  # forward from the archive's revision to this Easel's
    with db.engine.connect() as connection:
        restored = _counts(connection)
    for name, count in restored.items():
        if count != manifest["counts"].get(name, count):
            raise BackupError(f"{name}: the archive lists {manifest['counts'][name]}, the database now has {count}")
    weights = 0
    try:
        from .queue_weights import restore_queue_weights

        weights = restore_queue_weights()
    except Exception as exc:  # the rows hold the truth; the chores copy them when Redis answers
        echo(f"queue weights: Redis did not answer ({type(exc).__name__}); the chores will copy them later")
    report.lines = [f"{name}: {count}" for name, count in restored.items()]
    report.lines += [f"files: {manifest['counts'].get('files', 0)}", f"queue weights copied to Redis: {weights}"]
    db.session.remove()
    return report
