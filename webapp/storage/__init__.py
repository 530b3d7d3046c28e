"""Where image files live: local disk by default, S3 when web and workers are on different machines.

``base`` holds the interface and the key builders, ``local`` and ``s3`` the backends; boto3 is
imported only when ``STORAGE=s3``. The app's one instance is reached through ``webapp.services.storage()``.
"""
from __future__ import annotations

from collections.abc import Mapping

from .base import Storage, StorageError, check_key, generation_prefix, image_key, thumbnail_key, timelapse_key
from .local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageError", "check_key", "create_storage", "generation_prefix",
           "image_key", "thumbnail_key", "timelapse_key"]


def create_storage(config: Mapping) -> Storage:
    """The backend named by ``STORAGE`` (``local`` or ``s3``)."""
    kind = (config.get("STORAGE") or "local").lower()
    if kind == "local":
        return LocalStorage(config["MEDIA_DIR"])
    if kind == "s3":
        from .s3 import S3Storage

        return S3Storage(bucket=config["S3_BUCKET"], prefix=config.get("S3_PREFIX", ""),
                         endpoint_url=config.get("S3_ENDPOINT_URL"))
    raise StorageError(f"STORAGE must be 'local' or 's3', got {kind!r}")
