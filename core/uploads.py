"""Resumable chunked uploads for large checkpoints: initiate → PUT chunks at offsets → complete.

Each session is a folder under the store holding `data` (the bytes so far) and `meta.json`
(owner, family, declared sha256 and size). A chunk must start where the data ends, so a
client that lost its connection asks for the offset and resumes there. Completion feeds
the file through the same store_upload as a one-shot upload, checking the sha256.

Budgets: a session idle for upload_idle_timeout_s (no chunk, no status) is gone, bytes and all
(`remove_expired` runs on every new session and in the workers' reconciler; an expired session
also answers 404 before it is swept). A user holds at most max_open_uploads_per_user sessions
(429) declaring at most max_upload_bytes_in_flight_per_user bytes together (413).

One writer per session: a chunk is written under an exclusive, non-blocking lock on the data
file, and its offset is checked under that lock. Two PUTs at the same offset cannot both land
(the second answers 409 with the offset to ask for), so the file never grows past its size.
"""
import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from core.config import Settings, get_settings
from core.errors import InvalidRequestError, NotFoundError, OffsetMismatchError, RateLimitedError, UploadBudgetError
from core.storage import CHUNK, StoredCheckpoint, store_upload

log = logging.getLogger("evalboard.uploads")


def _root(settings: Settings) -> Path:
    root = settings.artifact_dir / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _last_active(folder: Path) -> float:
    """When the session was last used: a chunk written (data) or its status read (meta.json, touched)."""
    return max((p.stat().st_mtime for p in (folder / "data", folder / "meta.json") if p.exists()), default=0.0)


def _expired(folder: Path, settings: Settings, now: float) -> bool:
    return now - _last_active(folder) > settings.upload_idle_timeout_s


def _sessions(settings: Settings) -> Iterator[tuple[Path, dict]]:
    for folder in _root(settings).iterdir():
        try:
            yield folder, json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue  # being created or removed right now


def remove_expired(settings: Settings | None = None, *, now: float | None = None) -> int:
    """Remove every session idle past upload_idle_timeout_s, with its bytes; how many were removed.
    Also removes half-created folders (no meta.json) once they are as old."""
    settings = settings or get_settings()
    now = time.time() if now is None else now
    removed = 0
    for folder in list(_root(settings).iterdir()):
        if not folder.is_dir():
            continue
        try:
            stale = _expired(folder, settings, now) and now - folder.stat().st_mtime > settings.upload_idle_timeout_s
        except OSError:
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d upload sessions idle for over %g s", removed, settings.upload_idle_timeout_s)
    return removed


def _session(upload_id: str, user_id: int, settings: Settings) -> tuple[Path, dict]:
    try:
        folder = _root(settings) / str(uuid.UUID(upload_id))
    except ValueError:
        raise NotFoundError(f"no upload {upload_id}") from None
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        raise NotFoundError(f"no upload {upload_id}") from None
    if meta["user_id"] != user_id:
        raise NotFoundError(f"no upload {upload_id}")  # not 403: upload ids do not leak
    if _expired(folder, settings, time.time()):
        shutil.rmtree(folder, ignore_errors=True)
        raise NotFoundError(f"no upload {upload_id}: it expired after {settings.upload_idle_timeout_s:g} s idle; "
                            f"start again")
    return folder, meta


@contextlib.contextmanager
def _user_lock(user_id: int, settings: Settings) -> Iterator[None]:
    """One session creation at a time per user (across API processes on this host): the caps hold."""
    with open(_root(settings) / f".user-{int(user_id)}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def initiate(*, user_id: int, family: str, size: int, sha256: str, settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    if size > settings.max_upload_bytes:
        raise InvalidRequestError(f"{size} bytes is over the upload limit of {settings.max_upload_bytes}",
                                  field="size")
    remove_expired(settings)  # sweeps here too: an API host need not share a disk with the workers
    with _user_lock(user_id, settings):
        mine = [(folder, meta) for folder, meta in _sessions(settings) if meta.get("user_id") == user_id]
        if len(mine) >= settings.max_open_uploads_per_user:
            oldest = min(_last_active(folder) for folder, _ in mine)
            retry = max(1, int(oldest + settings.upload_idle_timeout_s - time.time()))
            raise RateLimitedError(f"you have {len(mine)} open uploads, the cap of max_open_uploads_per_user="
                                   f"{settings.max_open_uploads_per_user}: complete or cancel one (DELETE "
                                   f"/api/v1/checkpoints/uploads/ID), or wait for one to expire", retry_after_s=retry)
        in_flight = sum(int(meta.get("size", 0)) for _, meta in mine)
        if in_flight + size > settings.max_upload_bytes_in_flight_per_user:
            cap = settings.max_upload_bytes_in_flight_per_user
            raise UploadBudgetError(f"your open uploads declare {in_flight} bytes; {size} more is over the cap of "
                                    f"max_upload_bytes_in_flight_per_user={cap} bytes: complete or cancel an "
                                    f"upload first", field="size")
        upload_id = str(uuid.uuid4())
        folder = _root(settings) / upload_id
        folder.mkdir()
        (folder / "data").touch()
        meta = {"user_id": user_id, "family": family, "size": size, "sha256": sha256}
        tmp = folder / "meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        tmp.rename(folder / "meta.json")  # whole or absent: a reader never sees half a meta.json
    return {"upload_id": upload_id, "offset": 0, "size": size}


def status(upload_id: str, *, user_id: int, settings: Settings | None = None) -> dict:
    folder, meta = _session(upload_id, user_id, settings or get_settings())
    (folder / "meta.json").touch()  # asking where to resume is activity: the session stays
    return {"upload_id": upload_id, "offset": (folder / "data").stat().st_size, "size": meta["size"]}


def abort(upload_id: str, *, user_id: int, settings: Settings | None = None) -> None:
    """Give up an upload: its bytes are removed and it no longer counts against the caps."""
    folder, _ = _session(upload_id, user_id, settings or get_settings())
    shutil.rmtree(folder, ignore_errors=True)


async def append(upload_id: str, offset: int, chunks: AsyncIterator[bytes], *, user_id: int,
                 settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    folder, meta = _session(upload_id, user_id, settings)
    data = folder / "data"
    try:
        out = open(data, "r+b")
    except FileNotFoundError:  # removed (expired, aborted, completed) since it was looked up
        raise NotFoundError(f"no upload {upload_id}") from None
    with out:
        try:
            fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OffsetMismatchError(data.stat().st_size, "another chunk of this upload is being written now; "
                                      "ask for the offset (GET) when it is done and resume there") from None
        current = os.fstat(out.fileno()).st_size  # read under the lock: no other writer can move it
        if offset != current:
            raise OffsetMismatchError(current)
        out.seek(current)
        written = current
        try:
            async for chunk in chunks:
                written += len(chunk)
                if written > meta["size"]:
                    raise InvalidRequestError(f"the chunk runs past the declared size of {meta['size']} bytes",
                                              field="body")
                out.write(chunk)
        except InvalidRequestError:
            out.truncate(current)  # a chunk past the declared size is refused whole
            raise
        out.flush()
        os.fsync(out.fileno())
    return {"upload_id": upload_id, "offset": written, "size": meta["size"]}


async def complete(upload_id: str, *, user_id: int, settings: Settings | None = None,
                   quota_left: int | None = None) -> tuple[StoredCheckpoint, str]:
    """Verify and store the assembled upload; the session is removed either way once the bytes are all there."""
    settings = settings or get_settings()
    folder, meta = _session(upload_id, user_id, settings)
    try:
        data = open(folder / "data", "rb")
    except FileNotFoundError:  # removed (expired, aborted, completed) since it was looked up
        raise NotFoundError(f"no upload {upload_id}") from None
    with data:
        try:  # no chunk may land while the bytes are being checked and stored
            fcntl.flock(data, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OffsetMismatchError(os.fstat(data.fileno()).st_size, "a chunk of this upload is being written "
                                      "now; complete it once that is done") from None
        size = os.fstat(data.fileno()).st_size
        if size != meta["size"]:
            raise InvalidRequestError(f"the upload has {size} of {meta['size']} bytes; send the rest "
                                      f"from that offset", field="offset")

        async def read() -> AsyncIterator[bytes]:
            while chunk := data.read(CHUNK):
                yield chunk
        try:
            return await store_upload(read(), family=meta["family"], settings=settings,
                                      expected_sha256=meta["sha256"], quota_left=quota_left), meta["family"]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
