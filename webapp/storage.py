"""Where image files live: local disk by default, S3 when web and workers are on different machines.

Keys are built from ids only (``users/<user_id>/<generation_id>/<index>.png``); user input never
becomes a path.
"""
from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


class StorageError(RuntimeError):
    """A file could not be stored or read."""


def image_key(user_id: int, generation_id: str, index: int) -> str:
    """The PNG of image ``index`` of a generation."""
    return f"users/{int(user_id)}/{generation_id}/{int(index)}.png"


def thumbnail_key(user_id: int, generation_id: str, index: int) -> str:
    """The WebP thumbnail of image ``index``."""
    return f"users/{int(user_id)}/{generation_id}/{int(index)}.thumb.webp"


def generation_prefix(user_id: int, generation_id: str) -> str:
    """Every file of one generation lies under this prefix."""
    return f"users/{int(user_id)}/{generation_id}/"


def check_key(key: str) -> str:
    """Refuse keys that could escape the store (``..``, absolute paths, odd characters)."""
    if not KEY_RE.match(key) or ".." in key.split("/") or "//" in key:
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    """The small interface every backend implements."""

    @abstractmethod
    def save(self, key: str, data: bytes, content_type: str) -> None:
        """Write ``data`` under ``key`` (replacing any file there)."""

    @abstractmethod
    def open(self, key: str) -> bytes:
        """Read the file at ``key``; raises FileNotFoundError when absent."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing file is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True when a file is stored at ``key``."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        """Yield ``(key, modified_unix_time)`` for every file under ``prefix``."""

    def download_url(self, key: str, content_type: str, download_name: str | None = None,
                     expires: int = 300) -> str | None:
        """A short-lived direct URL (an attachment when ``download_name`` is given), or None to stream it here."""
        return None

    def local_path(self, key: str) -> Path | None:
        """The file on this machine's disk, when there is one (lets the web server stream it)."""
        return None

    def delete_prefix(self, prefix: str) -> int:
        """Delete every file under ``prefix``; returns how many."""
        keys = [key for key, _ in self.list(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)


class LocalStorage(Storage):
    """Files under one directory (``MEDIA_DIR``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise StorageError(f"invalid storage key {key!r}")
        return path

    def save(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"could not write {key}: {exc.strerror}") from exc

    def open(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        for parent in path.parents:  # tidy empty folders, never the root
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        base = self.root / prefix if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.exists():
            return
        for path in start.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key, path.stat().st_mtime

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def create_storage(config: Mapping) -> Storage:
    """The backend named by ``STORAGE`` (``local`` or ``s3``)."""
    kind = (config.get("STORAGE") or "local").lower()
    if kind == "local":
        return LocalStorage(config["MEDIA_DIR"])
    if kind == "s3":
        from .storage_s3 import S3Storage

        return S3Storage(bucket=config["S3_BUCKET"], prefix=config.get("S3_PREFIX", ""),
                         endpoint_url=config.get("S3_ENDPOINT_URL"))
    raise StorageError(f"STORAGE must be 'local' or 's3', got {kind!r}")


def get_storage() -> Storage:
    """The storage of the current app, created once per app."""
    from flask import current_app

    storage = current_app.extensions.get("easel_storage")
    if storage is None:
        storage = current_app.extensions["easel_storage"] = create_storage(current_app.config)
    return storage
