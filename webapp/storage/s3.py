"""S3 storage: the same keys as on disk, in one bucket, so web and GPU workers can live on different machines.

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``~/.aws``, instance roles). ``S3_ENDPOINT_URL`` points at an S3-compatible server (MinIO, R2, moto).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .base import Storage, StorageError, check_key

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
MAX_ATTEMPTS = 3
DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _attachment(filename: str) -> str:
    # Download names are made from ids and numbers, but quote defensively anyway.
    safe = "".join(ch for ch in filename if ch.isalnum() or ch in "._-") or "download"
    return f'attachment; filename="{safe}"'


class S3Storage(Storage):
    """Files in an S3 bucket under an optional key prefix."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        if not bucket:
            raise StorageError("STORAGE=s3 needs S3_BUCKET (the bucket that holds the images)")
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        session = boto3.session.Session()
        config = Config(
            connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"}, signature_version="s3v4",
            # S3-compatible servers on a plain host name or IP address rarely resolve bucket subdomains.
            s3={"addressing_style": "path"} if endpoint_url else {},
        )
        self.client = session.client("s3", endpoint_url=endpoint_url or None,
                                     region_name=session.region_name or "us-east-1", config=config)

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def save(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not upload {key} to s3://{self.bucket}: {exc}") from exc

    def open(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in NOT_FOUND:
                raise FileNotFoundError(key) from exc
            raise StorageError(f"could not read {key} from s3://{self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key} from s3://{self.bucket}: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not delete {key} from s3://{self.bucket}: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _error_code(exc) in NOT_FOUND:
                return False
            raise StorageError(f"could not check {key} in s3://{self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not check {key} in s3://{self.bucket}: {exc}") from exc
        return True

    def list(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix):], item["LastModified"].timestamp()
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not list s3://{self.bucket}/{self.prefix}{prefix}: {exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        keys = [self.prefix + key for key, _ in self.list(prefix)]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start:start + DELETE_BATCH]]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (BotoCoreError, ClientError) as exc:
                raise StorageError(f"could not delete under {prefix} in s3://{self.bucket}: {exc}") from exc
        return len(keys)

    def download_url(self, key: str, content_type: str, download_name: str | None = None,
                     expires: int = 300) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._key(key), "ResponseContentType": content_type}
        if download_name:
            params["ResponseContentDisposition"] = _attachment(download_name)
        try:
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not sign a link to {key}: {exc}") from exc
