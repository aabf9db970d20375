"""Resumable chunked uploads for large checkpoints: initiate → PUT chunks at offsets → complete.

Each session is a folder under the store holding `data` (the bytes so far) and `meta.json`
(owner, family, declared sha256 and size). A chunk must start where the data ends, so a
client that lost its connection asks for the offset and resumes there. Completion feeds
the file through the same store_upload as a one-shot upload, checking the sha256.
"""
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from core.config import Settings, get_settings
from core.errors import InvalidRequestError, NotFoundError
from core.storage import CHUNK, StoredCheckpoint, store_upload


class OffsetMismatchError(InvalidRequestError):
    """The chunk does not start where the upload stands; `offset` says where it does."""

    def __init__(self, offset: int):
        super().__init__(f"this chunk must start at offset {offset}", field="offset")
        self.offset = offset


def _root(settings: Settings) -> Path:
    root = settings.artifact_dir / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _session(upload_id: str, user_id: int, settings: Settings) -> tuple[Path, dict]:
    try:
        folder = _root(settings) / str(uuid.UUID(upload_id))
    except ValueError:
        raise NotFoundError(f"no upload {upload_id}") from None
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise NotFoundError(f"no upload {upload_id}")
    meta = json.loads(meta_path.read_text())
    if meta["user_id"] != user_id:
        raise NotFoundError(f"no upload {upload_id}")  # not 403: upload ids do not leak
    return folder, meta


def initiate(*, user_id: int, family: str, size: int, sha256: str, settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    if size > settings.max_upload_bytes:
        raise InvalidRequestError(f"{size} bytes is over the upload limit of {settings.max_upload_bytes}",
                                  field="size")
    upload_id = str(uuid.uuid4())
    folder = _root(settings) / upload_id
    folder.mkdir()
    (folder / "data").touch()
    meta = {"user_id": user_id, "family": family, "size": size, "sha256": sha256}
    (folder / "meta.json").write_text(json.dumps(meta))
    return {"upload_id": upload_id, "offset": 0, "size": size}


def status(upload_id: str, *, user_id: int, settings: Settings | None = None) -> dict:
    folder, meta = _session(upload_id, user_id, settings or get_settings())
    return {"upload_id": upload_id, "offset": (folder / "data").stat().st_size, "size": meta["size"]}


async def append(upload_id: str, offset: int, chunks: AsyncIterator[bytes], *, user_id: int,
                 settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    folder, meta = _session(upload_id, user_id, settings)
    data = folder / "data"
    current = data.stat().st_size
    if offset != current:
        raise OffsetMismatchError(current)
    written = current
    with open(data, "ab") as out:
        async for chunk in chunks:
            written += len(chunk)
            if written > meta["size"]:
                out.truncate(current)  # a chunk past the declared size is refused whole
                raise InvalidRequestError(f"the chunk runs past the declared size of {meta['size']} bytes",
                                          field="body")
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return {"upload_id": upload_id, "offset": written, "size": meta["size"]}


async def complete(upload_id: str, *, user_id: int, settings: Settings | None = None
                   ) -> tuple[StoredCheckpoint, str]:
    """Verify and store the assembled upload; the session is removed either way once the bytes are all there."""
    settings = settings or get_settings()
    folder, meta = _session(upload_id, user_id, settings)
    data = folder / "data"
    if data.stat().st_size != meta["size"]:
        raise InvalidRequestError(f"the upload has {data.stat().st_size} of {meta['size']} bytes; send the rest "
                                  f"from that offset", field="offset")

    async def read() -> AsyncIterator[bytes]:
        with open(data, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    try:
        return await store_upload(read(), family=meta["family"], settings=settings,
                                  expected_sha256=meta["sha256"]), meta["family"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
