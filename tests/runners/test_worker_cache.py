"""A worker's checkpoint cache: fetch by hash once, verify, reuse, evict; every failure is the service's."""
import hashlib
import threading
import uuid
from pathlib import Path

import pytest

from core.artifact_store import FileStore, checkpoint_key, open_store
from core.config import get_settings
from runners.worker_cache import CacheFetchError, WorkerCache
from tests.conftest import pack
from tests.s3_server import CuttingProxy


@pytest.fixture
def archive(tiny_lm_dir, tmp_path) -> tuple[Path, str]:
    data = pack(tiny_lm_dir, tmp_path / "m.tar.gz")
    return tmp_path / "m.tar.gz", hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3_store(s3_server):
    bucket = s3_server.make_bucket(f"c-{uuid.uuid4().hex[:12]}")
    return open_store(f"s3://{bucket}/cache-test", endpoint_url=s3_server.url), bucket


def stored_variants(tiny_lm_dir, tmp_path, count: int) -> tuple[FileStore, list[str], int]:
    """`count` distinct checkpoints (their cards differ) in a file store: (store, keys, one model's bytes)."""
    import shutil
    store, keys = FileStore(tmp_path / "store"), []
    for i in range(count):
        folder = tmp_path / f"m{i}"
        shutil.copytree(tiny_lm_dir, folder)
        (folder / "README.md").write_text(f"model {i}\nlicense: mit\n")
        data = pack(folder, tmp_path / f"m{i}.tar.gz")
        keys.append(checkpoint_key(hashlib.sha256(data).hexdigest()))
        store.put_file(keys[-1], tmp_path / f"m{i}.tar.gz")
    return store, keys, sum(p.stat().st_size for p in tiny_lm_dir.rglob("*") if p.is_file())


def cache_over(store, tmp_path, max_bytes=10 * 2**30) -> WorkerCache:
    return WorkerCache(tmp_path / "cache", max_bytes, store, get_settings())


def test_a_checkpoint_is_fetched_once_then_served_from_the_cache(archive, tmp_path, s3_store):
    store, _ = s3_store
    path, sha = archive
    store.put_file(checkpoint_key(sha), path)
    cache = cache_over(store, tmp_path)
    first = cache.checkpoint(checkpoint_key(sha), "causal-lm")
    second = cache.checkpoint(checkpoint_key(sha), "causal-lm")
    assert first == second and (first / "config.json").is_file()
    assert (cache.stats.misses, cache.stats.hits) == (1, 1)
    assert cache.stats.fetched_bytes == path.stat().st_size and cache.stats.fetch_seconds > 0


def test_concurrent_runs_on_one_machine_fetch_once(archive, tmp_path, s3_store):
    store, _ = s3_store
    path, sha = archive
    store.put_file(checkpoint_key(sha), path)
    caches = [cache_over(store, tmp_path) for _ in range(4)]  # as four worker processes sharing the folder
    folders = []
    threads = [threading.Thread(target=lambda c=c: folders.append(c.checkpoint(checkpoint_key(sha), "causal-lm")))
               for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(folders)) == 1
    assert sum(c.stats.misses for c in caches) == 1 and sum(c.stats.hits for c in caches) == 3


def test_a_corrupted_object_is_never_used_and_is_fetched_again_once_repaired(archive, tmp_path, s3_store, s3_server):
    store, bucket = s3_store
    path, sha = archive
    key = checkpoint_key(sha)
    s3_server.client().put_object(Bucket=bucket, Key=f"cache-test/{key}", Body=path.read_bytes()[:-10] + b"x" * 10)
    cache = cache_over(store, tmp_path)
    with pytest.raises(CacheFetchError, match="corrupt"):
        cache.checkpoint(key, "causal-lm")
    assert not list((tmp_path / "cache" / "checkpoints").iterdir())  # nothing kept of it
    s3_server.client().put_object(Bucket=bucket, Key=f"cache-test/{key}", Body=path.read_bytes())
    assert (cache.checkpoint(key, "causal-lm") / "config.json").is_file()


def test_the_store_going_down_mid_fetch_is_the_services_error_and_loses_nothing(archive, tmp_path, s3_store,
                                                                                  s3_server):
    store, bucket = s3_store
    path, sha = archive
    key = checkpoint_key(sha)
    store.put_file(key, path)
    proxy = CuttingProxy(s3_server.port, cut_after=path.stat().st_size // 2)  # the answer stops halfway
    try:
        cut = cache_over(open_store(f"s3://{bucket}/cache-test", endpoint_url=proxy.url), tmp_path)
        with pytest.raises(CacheFetchError):
            cut.checkpoint(key, "causal-lm")
        assert proxy.cuts >= 1
    finally:
        proxy.close()
    assert not list((tmp_path / "cache" / "checkpoints").iterdir())
    assert store.exists(key)  # the object itself is untouched: the retry succeeds
    assert (cache_over(store, tmp_path).checkpoint(key, "causal-lm") / "config.json").is_file()


def test_the_least_recently_used_checkpoint_goes_when_the_cache_is_full(tiny_lm_dir, tmp_path):
    store, keys, one = stored_variants(tiny_lm_dir, tmp_path, 3)
    cache = cache_over(store, tmp_path, max_bytes=int(2.5 * one))
    cache.checkpoint(keys[0], "causal-lm")
    cache.checkpoint(keys[1], "causal-lm")
    cache.checkpoint(keys[0], "causal-lm")  # used again: now keys[1] is the least recent
    cache.checkpoint(keys[2], "causal-lm")
    kept = {p.name for p in (tmp_path / "cache" / "checkpoints").iterdir() if p.is_dir()}
    assert kept == {keys[0].split("/")[1], keys[2].split("/")[1]}
    assert cache.stats.evictions == 1 and cache.stats.used_bytes <= 2.5 * one


def test_a_missing_object_is_the_services_error(tmp_path):
    with pytest.raises(CacheFetchError, match="not in the store"):
        cache_over(FileStore(tmp_path / "store"), tmp_path).checkpoint(checkpoint_key("f" * 64), "causal-lm")


def test_a_checkpoint_in_use_is_never_evicted(tiny_lm_dir, tmp_path):
    store, keys, one = stored_variants(tiny_lm_dir, tmp_path, 2)
    reader = cache_over(store, tmp_path, max_bytes=int(1.5 * one))  # room for one checkpoint only
    in_use, pin = reader.acquire(keys[0], "causal-lm")  # a child is reading this one
    other = cache_over(store, tmp_path, max_bytes=int(1.5 * one))  # another worker process on the machine
    other.checkpoint(keys[1], "causal-lm")
    assert (in_use / "config.json").is_file()  # over the cap, but pinned: kept
    pin.close()
    other.checkpoint(checkpoint_key(keys[1].split("/")[1]), "causal-lm")
    cache_over(store, tmp_path, max_bytes=int(1.5 * one))._evict(keep=keys[1].split("/")[1])
    assert not in_use.exists()  # released: now it may go
