"""A worker's local copies of checkpoints, fetched from the artifact store by content hash.

`checkpoint(key, family)` returns a folder holding the unpacked, checked model:
- on a hit, the folder already verified on this machine (its marker is touched: least recently used
  entries go first when the cache is over `WORKER_CACHE_MAX_BYTES`);
- on a miss, the object is downloaded to a temporary file, its sha256 compared with the key (a
  corrupt or truncated object is deleted and never used), unpacked with the same safe unpacker and
  checks as an upload (core/storage.py), and renamed into place in one step.
A file lock per hash makes concurrent runs on one machine (threads or worker processes sharing the
folder) fetch once. Every failure here is the service's (`CacheFetchError`), retried elsewhere.
"""
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.artifact_store import ArtifactStore, ArtifactStoreError, sha256_of_file
from core.config import Settings
from core.errors import InvalidCheckpointError, UnsafeArchiveError

log = logging.getLogger("evalboard.worker_cache")


class CacheFetchError(RuntimeError):
    """The checkpoint could not be made available on this worker: an infrastructure error."""


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    fetched_bytes: int = 0
    fetch_seconds: float = 0.0
    evictions: int = 0
    used_bytes: int = 0


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _touch(marker: Path) -> None:
    """Stamp last use with the precise clock: the kernel's own stamp is coarse (jiffies), too coarse to order
    two uses a few milliseconds apart."""
    now = time.time_ns()
    os.utime(marker, ns=(now, now))


class WorkerCache:
    def __init__(self, root: Path, max_bytes: int, store: ArtifactStore, settings: Settings):
        self.root, self.max_bytes, self.store, self.settings = root, max_bytes, store, settings
        (root / "checkpoints").mkdir(parents=True, exist_ok=True)
        (root / "locks").mkdir(exist_ok=True)
        self.stats = CacheStats()
        self._mutex = threading.Lock()

    @contextmanager
    def _locked(self, sha: str, *, blocking: bool = True):
        with open(self.root / "locks" / f"{sha}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _marker(self, sha: str) -> Path:
        # Beside the folder, not in it: the folder holds exactly the model's files.
        return self.root / "checkpoints" / f"{sha}.ok"

    def _verified(self, sha: str) -> Path | None:
        marker = self._marker(sha)
        if marker.is_file():
            folder = self.root / "checkpoints" / sha / marker.read_text()
            if folder.is_dir():
                return folder
        return None

    def acquire(self, key: str, family: str):
        """(folder, pin): the checkpoint, and an open shared lock on it that keeps eviction away while the
        caller uses it (close the pin when done). Readers share; a fetch or an eviction is exclusive."""
        sha = key.rsplit("/", 1)[-1]
        fetched_here = False
        while True:
            pin = open(self.root / "locks" / f"{sha}.lock", "a")
            fcntl.flock(pin, fcntl.LOCK_SH)
            folder = self._verified(sha)
            if folder is not None:
                _touch(self._marker(sha))
                if not fetched_here:
                    with self._mutex:
                        self.stats.hits += 1
                return folder, pin
            pin.close()
            with self._locked(sha):  # exclusive: one fetch per machine; others wait, then find it
                if self._verified(sha) is None:
                    self._fetch(key, sha, family)
                    fetched_here = True
            if fetched_here:
                self._evict(keep=sha)

    def checkpoint(self, key: str, family: str) -> Path:
        """The checkpoint's folder, not pinned: for callers that read it at once."""
        folder, pin = self.acquire(key, family)
        pin.close()
        return folder

    def _fetch(self, key: str, sha: str, family: str) -> Path:
        from core.storage import unpack_checked  # the upload's own unpacker and checks

        started = time.monotonic()
        final = self.root / "checkpoints" / sha
        shutil.rmtree(final, ignore_errors=True)  # a half-made folder of a crashed fetch
        fd, tmp_name = tempfile.mkstemp(prefix=".fetch-", dir=self.root)
        os.close(fd)
        archive = Path(tmp_name)
        unpacked = Path(tempfile.mkdtemp(prefix=".unpack-", dir=self.root))
        try:
            try:
                self.store.get_to_file(key, archive)
            except ArtifactStoreError as exc:
                raise CacheFetchError(f"fetching the checkpoint from the artifact store failed: {exc}") from exc
            actual = sha256_of_file(archive)
            if actual != sha:
                raise CacheFetchError(f"the artifact store returned bytes hashing to {actual[:12]}… for {key}: "
                                      f"corrupt or truncated, not used")
            try:
                model_root = unpack_checked(archive, unpacked, family, self.settings)
            except (UnsafeArchiveError, InvalidCheckpointError) as exc:
                # It passed these checks at upload: failing now means the rules or the store changed.
                raise CacheFetchError(f"the stored checkpoint {sha[:12]}… fails today's checks: {exc}") from exc
            relative = model_root.relative_to(unpacked)
            unpacked.rename(final)
            self._marker(sha).write_text(str(relative))
            _touch(self._marker(sha))
            took = time.monotonic() - started
            with self._mutex:
                self.stats.misses += 1
                self.stats.fetched_bytes += archive.stat().st_size
                self.stats.fetch_seconds += took
            log.info("checkpoint %s fetched from %s: %d bytes in %.2f s", sha[:12], self.store.url,
                     archive.stat().st_size, took)
            return final / relative
        finally:
            archive.unlink(missing_ok=True)
            shutil.rmtree(unpacked, ignore_errors=True)

    def _entries(self) -> list[tuple[float, str, int]]:
        entries = []
        for marker in (self.root / "checkpoints").glob("*.ok"):
            sha = marker.name.removesuffix(".ok")
            folder = self.root / "checkpoints" / sha
            if folder.is_dir():
                entries.append((marker.stat().st_mtime, sha, _folder_bytes(folder)))
        return entries

    def _evict(self, keep: str) -> None:
        entries = sorted(self._entries())
        used = sum(size for _, _, size in entries)
        for _, sha, size in entries:
            if used <= self.max_bytes:
                break
            if sha == keep:
                continue
            with self._locked(sha, blocking=False) as held:
                if not held:
                    continue  # being fetched or read right now
                self._marker(sha).unlink(missing_ok=True)
                shutil.rmtree(self.root / "checkpoints" / sha, ignore_errors=True)
                used -= size
                with self._mutex:
                    self.stats.evictions += 1
        with self._mutex:
            self.stats.used_bytes = used


def publish_stats(redis, worker: str, ttl_s: int) -> None:
    """The cache's figures for the API's /metrics (it reads every live worker's key)."""
    if _cache is None:
        return
    with _cache._mutex:
        stats = dict(vars(_cache.stats))
    stats["max_bytes"] = _cache.max_bytes
    from runners.dispatch import WORKER_CACHE_STATS_KEY
    key = WORKER_CACHE_STATS_KEY.format(worker=worker)
    redis.hset(key, mapping={name: str(value) for name, value in stats.items()})
    redis.expire(key, ttl_s)


_cache: WorkerCache | None = None


def worker_cache(settings: Settings) -> WorkerCache:
    """This process's cache, over the configured store."""
    global _cache
    if _cache is None:
        from core.artifact_store import get_store
        root = settings.worker_cache_dir or settings.data_dir / "worker-cache"
        _cache = WorkerCache(root, settings.worker_cache_max_bytes, get_store(settings), settings)
    return _cache
