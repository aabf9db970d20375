"""The artifact store's two backends, file:// and s3:// (against a real S3-protocol server on loopback)."""
import hashlib
import os
import uuid

import pytest

from core.artifact_store import (
    ArtifactMissingError,
    ArtifactStoreError,
    FileStore,
    checkpoint_key,
    key_of,
    open_store,
    store_uri,
)


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path, s3_server):
    if request.param == "file":
        return FileStore(tmp_path / "store")
    bucket = s3_server.make_bucket(f"b-{uuid.uuid4().hex[:12]}")
    return open_store(f"s3://{bucket}/some/prefix", endpoint_url=s3_server.url)


def write(path, data: bytes) -> tuple:
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_an_object_goes_in_and_comes_back_the_same(store, tmp_path):
    source, sha = write(tmp_path / "a.tar", os.urandom(300_000))
    key = checkpoint_key(sha)
    assert not store.exists(key)
    store.put_file(key, source)
    store.put_file(key, source)  # immutable: a second put of the same key changes nothing
    assert store.exists(key)
    store.get_to_file(key, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == source.read_bytes()


def test_a_missing_object_says_so(store, tmp_path):
    with pytest.raises(ArtifactMissingError):
        store.get_to_file(checkpoint_key("0" * 64), tmp_path / "x")


def test_a_large_archive_goes_up_in_parts(s3_server, tmp_path):
    bucket = s3_server.make_bucket(f"b-{uuid.uuid4().hex[:12]}")
    store = open_store(f"s3://{bucket}/p", endpoint_url=s3_server.url)
    source, sha = write(tmp_path / "big.tar", os.urandom(70 * 2**20))  # over the 64 MiB part size
    store.put_file(checkpoint_key(sha), source)
    head = s3_server.client().head_object(Bucket=bucket, Key=f"p/{checkpoint_key(sha)}")
    assert head["ContentLength"] == 70 * 2**20
    assert head["ETag"].strip('"').endswith("-2")  # S3's mark of a two-part multipart upload
    store.get_to_file(checkpoint_key(sha), tmp_path / "back")
    assert hashlib.sha256((tmp_path / "back").read_bytes()).hexdigest() == sha


def test_a_store_that_is_down_is_an_error_of_the_service_within_seconds(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    store = open_store("s3://bucket/p", endpoint_url=dead)
    with pytest.raises(ArtifactStoreError):
        store.get_to_file(checkpoint_key("1" * 64), tmp_path / "x")


@pytest.mark.parametrize("key", ["../etc/passwd", "checkpoints/../../x", "checkpoints/abc", "/abs/" + "0" * 64])
def test_keys_are_content_hashes_never_paths(tmp_path, key):
    with pytest.raises(ValueError):
        FileStore(tmp_path).put_file(key, tmp_path)
    with pytest.raises(ValueError):
        key_of("store:" + key)


def test_store_uris_name_keys_not_machine_paths():
    key = checkpoint_key("a" * 64)
    assert store_uri(key) == "store:checkpoints/" + "a" * 64 and key_of(store_uri(key)) == key
    assert key_of("hf://org/name@" + "b" * 40) is None


@pytest.mark.parametrize("url", ["ftp://x/y", "s3://", "/just/a/path"])
def test_an_unknown_store_url_is_refused_in_words(url):
    with pytest.raises(ValueError, match="ARTIFACT_STORE_URL"):
        open_store(url)


def test_ensure_makes_the_bucket_once(s3_server):
    bucket = f"new-{uuid.uuid4().hex[:12]}"
    store = open_store(f"s3://{bucket}/p", endpoint_url=s3_server.url)
    store.ensure()
    store.ensure()  # harmless when it exists
    assert bucket in {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
