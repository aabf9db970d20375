"""The mirror's manifests: every file checked, nothing read or written outside the mirror, every fault named."""
import json
from pathlib import Path

import pytest

from core.dataset_mirror import (
    DatasetMirrorError,
    dataset_folder,
    sha256_file,
    verify_dataset,
    verify_mirror,
    write_manifest,
)


def _dataset(mirror: Path, path: str = "org/set", name: str | None = "sub", splits=("test", "dev")) -> Path:
    folder = dataset_folder(mirror, path, name)
    for split in splits:
        (folder / split).mkdir(parents=True)
        (folder / split / "0000.parquet").write_bytes(f"rows of {split}".encode())
    write_manifest(folder, dataset_path=path, dataset_name=name, revision="a" * 40, load_kwargs={},
                   splits={s: 3 for s in splits})
    return folder


def test_a_written_dataset_verifies_and_its_identity_is_the_manifests_sha256(tmp_path):
    folder = _dataset(tmp_path)
    verified = verify_dataset(tmp_path, "org/set", "sub")
    assert verified.manifest_sha256 == sha256_file(folder / "manifest.json")
    assert verified.provenance() == {"revision": "a" * 40, "manifest_sha256": verified.manifest_sha256}
    assert verified.data_files() == {s: [str(folder / s / "0000.parquet")] for s in ("dev", "test")}
    assert verify_mirror(tmp_path) == [("org/set:sub", None)]
    # A task pinning a revision is served only the copy fetched for that pin (or that very commit).
    assert verified.answers(None) and verified.answers("a" * 40) and not verified.answers("refs/convert/parquet")
    write_manifest(folder, dataset_path="org/set", dataset_name="sub", revision="a" * 40, load_kwargs={},
                   splits={"test": 3, "dev": 3}, requested_revision="refs/convert/parquet")
    assert verify_dataset(tmp_path, "org/set", "sub").answers("refs/convert/parquet")


@pytest.mark.parametrize("path,name", [("../etc", None), ("org/..", None), ("/abs/set", None), ("a/b/c", None),
                                       ("org/set", "../../x"), ("org/set", "a/b"), ("org/.hidden", None),
                                       ("org/set", "..")])
def test_names_that_would_leave_the_mirror_are_refused(tmp_path, path, name):
    with pytest.raises(DatasetMirrorError, match="not a plain name|not a hub name"):
        dataset_folder(tmp_path, path, name)


def test_a_manifest_pointing_outside_its_folder_is_refused_without_reading_there(tmp_path):
    mirror = tmp_path / "mirror"
    folder = _dataset(mirror)
    (tmp_path / "secret").write_text("not the mirror's")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["splits"]["test"]["files"][0]["path"] = "../../../../secret"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetMirrorError, match=r"manifest lists '../../../../secret' for split 'test'"):
        verify_dataset(mirror, "org/set", "sub")


def test_a_changed_or_missing_file_names_the_dataset_the_file_and_the_pull(tmp_path):
    folder = _dataset(tmp_path)
    (folder / "test" / "0000.parquet").write_bytes(b"other rows")
    with pytest.raises(DatasetMirrorError) as changed:
        verify_dataset(tmp_path, "org/set", "sub", task="some_task")
    assert "org/set:sub: test/0000.parquet does not match its manifest" in str(changed.value)
    assert "evalboard datasets pull --task some_task" in str(changed.value)
    (folder / "dev" / "0000.parquet").unlink()
    [(key, problem)] = verify_mirror(tmp_path)
    assert key == "org/set:sub" and "dev/0000.parquet is missing" in problem


def test_a_missing_mirror_a_missing_dataset_and_a_broken_manifest_are_told_apart(tmp_path):
    with pytest.raises(DatasetMirrorError, match=r"org/set:sub is needed but there is no dataset mirror at"):
        verify_dataset(tmp_path / "nowhere", "org/set", "sub")
    tmp_path.joinpath("org").mkdir()
    with pytest.raises(DatasetMirrorError, match=r"org/set:sub is not in the dataset mirror"):
        verify_dataset(tmp_path, "org/set", "sub")
    folder = _dataset(tmp_path)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetMirrorError, match="manifest is unreadable"):
        verify_dataset(tmp_path, "org/set", "sub")
    assert "unreadable manifest" in verify_mirror(tmp_path)[0][1]


def test_a_manifest_copied_under_another_datasets_name_is_refused(tmp_path):
    folder = _dataset(tmp_path, "org/set", "sub")
    other = dataset_folder(tmp_path, "org/other", None)
    other.parent.mkdir(parents=True)
    folder.rename(other)
    with pytest.raises(DatasetMirrorError, match="names another dataset"):
        verify_dataset(tmp_path, "org/other", None)
    [(key, problem)] = verify_mirror(tmp_path)
    assert key == "org/set:sub" and "lies elsewhere" in problem


def test_nltk_data_verifies_file_by_file_and_refuses_links_and_paths_outside(tmp_path):
    from core.dataset_mirror import nltk_dir, verify_tree, write_tree_manifest

    folder = nltk_dir(tmp_path)
    (folder / "tokenizers" / "punkt_tab" / "english").mkdir(parents=True)
    (folder / "tokenizers" / "punkt_tab" / "english" / "abbrev_types.txt").write_text("e.g\n")
    write_tree_manifest(folder, resources=["punkt_tab"], revision="nltk 3.9")
    assert verify_tree(tmp_path, ("punkt_tab",)).provenance()["revision"] == "nltk 3.9"
    with pytest.raises(DatasetMirrorError, match="NLTK data wordnet is not in the dataset mirror"):
        verify_tree(tmp_path, ("wordnet",))

    (tmp_path / "secret").write_text("host file")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"].append({"path": "../secret", "sha256": sha256_file(tmp_path / "secret"), "bytes": 9})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetMirrorError, match=r"NLTK manifest lists '../secret'"):
        verify_tree(tmp_path, ("punkt_tab",))

    manifest["files"].pop()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    target = folder / "tokenizers" / "punkt_tab" / "english" / "abbrev_types.txt"
    target.unlink()
    target.symlink_to(tmp_path / "secret")  # same name, now a link out of the mirror
    with pytest.raises(DatasetMirrorError, match="abbrev_types.txt is missing from the mirror"):
        verify_tree(tmp_path, ("punkt_tab",))
    assert [key for key, problem in verify_mirror(tmp_path) if problem] == ["nltk_data"]
