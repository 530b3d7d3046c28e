"""Take images home: one ZIP of the stored PNGs (their parameters still in the PNG text chunks) plus
``manifest.json``, written as it streams, so the archive never sits whole in memory."""
from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ..image_files import download_name
from ..storage import Storage
from ..tables import Image, utcnow

log = logging.getLogger(__name__)


class _Chunks:
    """A write-only sink: zipfile cannot seek in it, so it writes each entry's sizes after its data."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: ``drain`` hands the bytes on."""

    def drain(self) -> bytes:
        """The bytes written since the last drain."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data


@dataclass(frozen=True)
class ZipEntry:
    """One image to pack: where it is stored, its name in the ZIP and its manifest record."""

    key: str
    name: str
    record: dict
    made: datetime


def zip_entries(images: list[Image]) -> list[ZipEntry]:
    """The entries for ``images``, read from the rows now (the stream then needs no database)."""
    entries, names = [], set()
    for image in images:
        generation = image.generation
        name = download_name(image, generation)
        if name in names:  # two ids that start alike: the whole id keeps the names apart
            name = name.removesuffix(".png").rsplit("-", 1)[0] + f"-{image.id}.png"
        names.add(name)
        record = {
            "file": name, "id": image.id, "generation_id": generation.id, "prompt": generation.prompt,
            "negative_prompt": generation.negative_prompt, "model": generation.model, "style": generation.style,
            "width": image.width, "height": image.height, "steps": generation.steps,
            "guidance": generation.guidance, "seed": generation.seed + image.index, "strength": generation.strength,
            "starred": image.is_starred, "published": image.is_public, "created_at": image.created_at.isoformat(),
        }
        entries.append(ZipEntry(key=image.storage_key, name=name, record=record, made=image.created_at))
    return entries


def _info(name: str, when: datetime, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=max(when, datetime(1980, 1, 1)).timetuple()[:6])
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def stream_zip(storage: Storage, entries: list[ZipEntry]) -> Iterator[bytes]:
    """Yield the ZIP piece by piece: each PNG as stored (already compressed), then ``manifest.json``.

    Only one PNG is in memory at a time. A file missing from storage is left out and marked
    ``"missing": true`` in the manifest, rather than cutting the download short.
    """
    sink = _Chunks()
    records = []
    with zipfile.ZipFile(sink, "w") as archive:
        for entry in entries:
            try:
                data = storage.open(entry.key)
            except FileNotFoundError:
                log.warning("ZIP download: %s is missing from storage", entry.key)
                records.append({**entry.record, "missing": True})
                continue
            archive.writestr(_info(entry.name, entry.made, zipfile.ZIP_STORED), data)
            records.append(entry.record)
            yield sink.drain()
        manifest = {"made_by": "Easel", "exported_at": utcnow().isoformat(), "images": records}
        archive.writestr(_info("manifest.json", utcnow(), zipfile.ZIP_DEFLATED),
                         json.dumps(manifest, indent=2, ensure_ascii=False))
    yield sink.drain()
