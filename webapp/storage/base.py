"""The storage interface and the keys: made from ids only, so user input never becomes a path."""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
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


def timelapse_key(user_id: int, generation_id: str, index: int) -> str:
    """The animated WebP of image ``index`` forming, step by step."""
    return f"users/{int(user_id)}/{generation_id}/{int(index)}.timelapse.webp"


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
