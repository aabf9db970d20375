"""The artifact store: immutable objects keyed by content hash, on a local folder or any S3 store.

`ARTIFACT_STORE_URL` picks the backend:
- `file:///path` (default: `<DATA_DIR>/artifacts/store`) — one machine, what `make run` uses;
- `s3://bucket/prefix` — AWS S3, MinIO, SeaweedFS, Ceph RGW, R2…, through boto3 (credentials from
  the standard AWS variables; `AWS_ENDPOINT_URL` or `ARTIFACT_STORE_ENDPOINT_URL` for a non-AWS endpoint).

Keys are `<kind>/<sha256>` (e.g. `checkpoints/3fa…`): the name says what the bytes hash to, so a
reader verifies what it fetched without asking anyone. Objects are written once and never
changed. The database keeps keys (as `store:<key>` URIs), never machine paths.
"""
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from core.config import Settings, get_settings

STORE_SCHEME = "store:"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9-]*/[0-9a-f]{64}$")
MULTIPART_THRESHOLD = 64 * 1024**2  # parts of 64 MiB above it: one failed part is retried, not the whole object
CHUNK = 1 << 20


class ArtifactStoreError(RuntimeError):
    """The store could not be reached or answered wrongly: the service's problem, worth a retry."""


class ArtifactMissingError(ArtifactStoreError):
    pass


def checkpoint_key(sha256: str) -> str:
    return f"checkpoints/{sha256}"


def store_uri(key: str) -> str:
    return STORE_SCHEME + key


def key_of(uri: str) -> str | None:
    """The key of a `store:` URI, or None for anything else (hub references, legacy paths)."""
    if not uri.startswith(STORE_SCHEME):
        return None
    key = uri.removeprefix(STORE_SCHEME)
    if not KEY_PATTERN.match(key):
        raise ValueError(f"not an artifact key: {key!r}")
    return key


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore(Protocol):
    url: str

    def put_file(self, key: str, path: Path) -> None:
        """Store `path` under `key` unless it is there already (objects are immutable)."""

    def get_to_file(self, key: str, dest: Path) -> None:
        """Write the object to `dest`; raises ArtifactMissingError / ArtifactStoreError."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def ensure(self) -> None:
        """Make the store ready to use (its folder, or its bucket); harmless when it is."""


class FileStore:
    def __init__(self, root: Path):
        self.root, self.url = root, f"file://{root}"

    def _path(self, key: str) -> Path:
        if not KEY_PATTERN.match(key):
            raise ValueError(f"not an artifact key: {key!r}")
        return self.root / key

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put-", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.chmod(tmp, 0o440)  # the service's own; an evaluation child (another uid) never reads the store
            os.replace(tmp, target)  # atomic: a reader sees the whole object or none
        finally:
            Path(tmp).unlink(missing_ok=True)

    def get_to_file(self, key: str, dest: Path) -> None:
        source = self._path(key)
        try:
            shutil.copyfile(source, dest)
        except FileNotFoundError as exc:
            raise ArtifactMissingError(f"{key} is not in the store {self.url}") from exc
        except OSError as exc:
            raise ArtifactStoreError(f"reading {key} from {self.url}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)


class S3Store:
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        # Bounded retries and timeouts: a store that is down fails a fetch in seconds (then the run is retried).
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self.client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        self.transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD,
                                       max_concurrency=4)

    def _key(self, key: str) -> str:
        if not KEY_PATTERN.match(key):
            raise ValueError(f"not an artifact key: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _errors(self):
        from boto3.exceptions import Boto3Error  # transfer failures: retries spent, upload failed
        from botocore.exceptions import BotoCoreError, ClientError
        return BotoCoreError, ClientError, Boto3Error

    def put_file(self, key: str, path: Path) -> None:
        if self.exists(key):
            return
        try:
            self.client.upload_file(str(path), self.bucket, self._key(key), Config=self.transfer)
        except (*self._errors(), OSError) as exc:
            raise ArtifactStoreError(f"writing {key} to {self.url}: {exc}") from exc

    def get_to_file(self, key: str, dest: Path) -> None:
        from botocore.exceptions import ClientError
        try:
            self.client.download_file(self.bucket, self._key(key), str(dest), Config=self.transfer)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise ArtifactMissingError(f"{key} is not in the store {self.url}") from exc
            raise ArtifactStoreError(f"reading {key} from {self.url}: {exc}") from exc
        except (*self._errors(), OSError) as exc:
            raise ArtifactStoreError(f"reading {key} from {self.url}: {exc}") from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise ArtifactStoreError(f"looking up {key} in {self.url}: {exc}") from exc
        except self._errors()[0] as exc:
            raise ArtifactStoreError(f"looking up {key} in {self.url}: {exc}") from exc

    def ensure(self) -> None:
        from botocore.exceptions import ClientError
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise ArtifactStoreError(f"checking the bucket of {self.url}: {exc}") from exc
        except self._errors()[0] as exc:
            raise ArtifactStoreError(f"checking the bucket of {self.url}: {exc}") from exc
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except (*self._errors(),) as exc:
            raise ArtifactStoreError(f"creating the bucket of {self.url}: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (*self._errors(),) as exc:
            raise ArtifactStoreError(f"deleting {key} from {self.url}: {exc}") from exc


def open_store(url: str, *, endpoint_url: str | None = None) -> ArtifactStore:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return FileStore(Path(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"ARTIFACT_STORE_URL {url!r} names no bucket (s3://bucket/prefix)")
        return S3Store(parts.netloc, parts.path, endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))
    raise ValueError(f"ARTIFACT_STORE_URL {url!r}: use file:///path or s3://bucket/prefix")


def get_store(settings: Settings | None = None) -> ArtifactStore:
    settings = settings or get_settings()
    url = settings.artifact_store_url or f"file://{settings.artifact_dir / 'store'}"
    return open_store(url, endpoint_url=settings.artifact_store_endpoint_url)
