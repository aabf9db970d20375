"""The dataset mirror through the artifact store: what a worker fetches is what was published, byte for
byte, and nothing an index or manifest says can put a file outside the mirror."""
import hashlib
import json
from pathlib import Path

import pytest

from core.artifact_store import FileStore
from core.dataset_mirror import DatasetMirrorError, nltk_dir, sha256_file, verify_mirror, write_tree_manifest
from core.mirror_store import fetch, publish
from tests.core.test_dataset_mirror import _dataset


def _mirror(root: Path) -> Path:
    _dataset(root, "org/set", "sub")
    _dataset(root, "solo", None, splits=("train",))
    tree = nltk_dir(root)
    (tree / "tokenizers" / "punkt_tab").mkdir(parents=True)
    (tree / "tokenizers" / "punkt_tab" / "README").write_text("punkt")
    write_tree_manifest(tree, resources=["punkt_tab"], revision="nltk 3.9")
    return root


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _put_index(store: FileStore, entries: list[dict], tmp_path: Path) -> str:
    body = json.dumps({"index_version": 1, "entries": entries}).encode()
    path = tmp_path / "index.json"
    path.write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    store.put_file(f"dataset-mirrors/{digest}", path)
    return digest


def test_a_published_mirror_is_fetched_byte_for_byte_and_kept_on_a_second_fetch(tmp_path):
    source, store = _mirror(tmp_path / "source"), FileStore(tmp_path / "store")
    index = publish(source, store)
    worker = tmp_path / "worker-mirror"
    done = fetch(index, worker, store)
    assert sorted(done) == [("nltk_data", "fetched"), ("org/set/sub", "fetched"), ("solo/default", "fetched")]
    assert _files(worker) == _files(source)
    assert all(problem is None for _, problem in verify_mirror(worker))
    assert {status for _, status in fetch(index, worker, store)} == {"kept"}
    assert publish(source, store) == index  # the same mirror is the same index


def test_an_unverified_mirror_is_not_published(tmp_path):
    source, store = _mirror(tmp_path / "source"), FileStore(tmp_path / "store")
    (source / "org" / "set" / "sub" / "test" / "0000.parquet").write_bytes(b"changed")
    with pytest.raises(DatasetMirrorError, match="does not verify, nothing was published"):
        publish(source, store)
    assert not (tmp_path / "store").exists()


def test_an_object_changed_in_the_store_is_refused_and_nothing_is_placed(tmp_path):
    source, store = _mirror(tmp_path / "source"), FileStore(tmp_path / "store")
    index = publish(source, store)
    digest = sha256_file(source / "solo" / "default" / "train" / "0000.parquet")
    obj = tmp_path / "store" / "dataset-files" / digest
    obj.chmod(0o644)
    obj.write_bytes(b"swapped in the bucket")
    with pytest.raises(DatasetMirrorError, match="does not match its name"):
        fetch(index, tmp_path / "worker", store)
    assert not (tmp_path / "worker" / "solo" / "default").exists()
    assert not any(p.name.startswith(".") for p in (tmp_path / "worker" / "solo").iterdir())  # no staging left


@pytest.mark.parametrize("folder", ["../outside", "org/../../outside", "/abs/set/x", "org/set/sub/extra",
                                    "org/set/.hidden"])
def test_an_index_naming_a_folder_outside_the_mirror_is_refused(tmp_path, folder):
    store = FileStore(tmp_path / "store")
    source = _mirror(tmp_path / "source")
    publish(source, store)
    manifest_sha = sha256_file(source / "org" / "set" / "sub" / "manifest.json")
    index = _put_index(store, [{"folder": folder, "manifest_sha256": manifest_sha}], tmp_path)
    with pytest.raises(DatasetMirrorError, match="not a mirror folder|not a plain name|not a hub name"):
        fetch(index, tmp_path / "worker" / "mirror", store)
    assert not (tmp_path / "worker" / "outside").exists() and not (tmp_path / "outside").exists()


def test_a_manifest_listing_a_file_outside_its_folder_is_refused(tmp_path):
    store = FileStore(tmp_path / "store")
    planted = tmp_path / "planted.json"
    (tmp_path / "payload").write_text("x")
    store.put_file(f"dataset-files/{sha256_file(tmp_path / 'payload')}", tmp_path / "payload")
    planted.write_text(json.dumps({"resources": ["punkt_tab"], "revision": "r", "files": [
        {"path": "../../../escaped", "sha256": sha256_file(tmp_path / "payload")}]}))
    store.put_file(f"dataset-manifests/{sha256_file(planted)}", planted)
    index = _put_index(store, [{"folder": "nltk_data", "manifest_sha256": sha256_file(planted)}], tmp_path)
    with pytest.raises(DatasetMirrorError, match=r"lists '../../../escaped'"):
        fetch(index, tmp_path / "worker" / "mirror", store)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "worker" / "escaped").exists()


def test_an_index_that_is_not_in_the_store_or_not_a_hash_is_named(tmp_path):
    store = FileStore(tmp_path / "store")
    with pytest.raises(DatasetMirrorError, match="fetching dataset-mirrors/"):
        fetch("a" * 64, tmp_path / "m", store)
    with pytest.raises(DatasetMirrorError, match="not a sha256"):
        fetch("../../etc/passwd", tmp_path / "m", store)
