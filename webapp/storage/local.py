"""Local storage: files under one directory (``MEDIA_DIR``), streamed by the web after the access check."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .base import Storage, StorageError, check_key


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
        # a prefix may end mid-name (``users/1/ab``): walk its folder; never above the root (no MEDIA_DIR yet)
        start = base if base.is_dir() or not prefix else base.parent
        if not start.exists():
            return
        for path in start.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key, path.stat().st_mtime

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
