"""The dataset mirror through the artifact store: published once, fetched by remote workers like checkpoints.

`evalboard datasets publish` puts every file of a verified mirror in the store under its sha256
(`dataset-files/<sha256>`), every manifest likewise (`dataset-manifests/<sha256>`), and an index
naming each manifest's folder (`dataset-mirrors/<sha256>`), and prints the index's sha256.
`evalboard datasets fetch <index>` on a worker host rebuilds the mirror from it: each object is
checked against the hash its key names, each folder is assembled beside its place and renamed in,
and what the worker already holds (same manifest) is kept. Nothing fetched chooses a path: folders
and file names are checked as the mirror checks them, so an index cannot write outside the mirror.
"""
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from core.artifact_store import ArtifactStore, ArtifactStoreError
from core.dataset_mirror import (
    MANIFEST,
    NLTK_FOLDER,
    DatasetMirrorError,
    dataset_folder,
    sha256_file,
    split_file,
    verify_mirror,
)

INDEX_VERSION = 1
_HEX64 = frozenset("0123456789abcdef")


def _is_sha256(value: str) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


def _files_of(manifest: dict) -> list[tuple[str, str]]:
    """(relative path, sha256) of every file a manifest lists: a dataset's splits, or the NLTK tree."""
    if "splits" in manifest:
        return [(f["path"], f["sha256"]) for entry in manifest["splits"].values() for f in entry["files"]]
    return [(f["path"], f["sha256"]) for f in manifest["files"]]


def _folder_in(mirror: Path, relative: str) -> Path:
    """The mirror folder an index entry names: a dataset folder as the mirror lays it out, or nltk_data."""
    if relative == NLTK_FOLDER:
        return mirror / NLTK_FOLDER
    parts = relative.split("/")
    if len(parts) not in (2, 3):
        raise DatasetMirrorError(f"the mirror index names {relative!r}, not a mirror folder")
    folder = dataset_folder(mirror, "/".join(parts[:-1]), parts[-1])  # refuses '..', '/', odd names
    if folder.relative_to(mirror).as_posix() != relative:
        raise DatasetMirrorError(f"the mirror index names {relative!r}, not a mirror folder")
    return folder


def _relative_file(manifest: dict, relative: str) -> Path:
    if "splits" in manifest:
        if relative not in {split_file(s) for s in manifest["splits"]}:
            raise DatasetMirrorError(f"a manifest in the mirror index lists {relative!r}")
        return Path(relative)
    parts = Path(relative).parts
    if (not parts or Path(relative).is_absolute() or relative == MANIFEST
            or any(p in ("..", ".", "") or p.startswith(".") for p in parts)):
        raise DatasetMirrorError(f"a manifest in the mirror index lists {relative!r}")
    return Path(relative)


def publish(mirror: Path, store: ArtifactStore) -> str:
    """Put a verified mirror in the store; returns the index sha256 workers fetch it by."""
    problems = [(key, problem) for key, problem in verify_mirror(mirror) if problem]
    if problems:
        raise DatasetMirrorError("the mirror does not verify, nothing was published: "
                                 + "; ".join(f"{k}: {p}" for k, p in problems))
    entries = []
    for manifest_path in sorted(mirror.rglob(MANIFEST)):
        folder = manifest_path.parent
        manifest = json.loads(manifest_path.read_text())
        for relative, digest in _files_of(manifest):
            store.put_file(f"dataset-files/{digest}", folder / relative)
        manifest_sha = sha256_file(manifest_path)
        store.put_file(f"dataset-manifests/{manifest_sha}", manifest_path)
        entries.append({"folder": folder.relative_to(mirror).as_posix(), "manifest_sha256": manifest_sha})
    if not entries:
        raise DatasetMirrorError(f"no datasets in {mirror}: nothing to publish")
    body = json.dumps({"index_version": INDEX_VERSION, "entries": entries}, sort_keys=True, indent=1).encode()
    digest = hashlib.sha256(body).hexdigest()
    with tempfile.NamedTemporaryFile(prefix="mirror-index-") as tmp:
        tmp.write(body)
        tmp.flush()
        store.put_file(f"dataset-mirrors/{digest}", Path(tmp.name))
    return digest


def _get(store: ArtifactStore, kind: str, digest: str, dest: Path) -> None:
    if not _is_sha256(digest):
        raise DatasetMirrorError(f"the mirror index names {digest!r}, not a sha256")
    try:
        store.get_to_file(f"{kind}/{digest}", dest)
    except ArtifactStoreError as exc:
        raise DatasetMirrorError(f"fetching {kind}/{digest[:12]}… from the artifact store: {exc}") from exc
    if sha256_file(dest) != digest:
        raise DatasetMirrorError(f"{kind}/{digest[:12]}… from the artifact store does not match its name")


def fetch(index_sha256: str, mirror: Path, store: ArtifactStore) -> list[tuple[str, str]]:
    """Rebuild the mirror a published index describes; returns (folder, "fetched" or "kept") per entry."""
    mirror.mkdir(parents=True, exist_ok=True)
    mirror.chmod(0o755)
    with tempfile.TemporaryDirectory(prefix=".index-", dir=mirror) as tmp:
        index_path = Path(tmp) / "index.json"
        _get(store, "dataset-mirrors", index_sha256, index_path)
        try:
            entries = [(e["folder"], e["manifest_sha256"]) for e in json.loads(index_path.read_text())["entries"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetMirrorError(f"mirror index {index_sha256[:12]}… is unreadable ({exc})") from exc
    done = []
    for relative, manifest_sha in entries:
        folder = _folder_in(mirror, relative)
        if (folder / MANIFEST).is_file() and sha256_file(folder / MANIFEST) == manifest_sha:
            done.append((relative, "kept"))
            continue
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.fetching-", dir=folder.parent))
        staging.chmod(0o755)  # read by the evaluation child's uid
        try:
            _get(store, "dataset-manifests", manifest_sha, staging / MANIFEST)
            manifest = json.loads((staging / MANIFEST).read_text())
            for name, digest in _files_of(manifest):
                target = staging / _relative_file(manifest, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                _get(store, "dataset-files", digest, target)
                target.chmod(0o644)
            (staging / MANIFEST).chmod(0o644)
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetMirrorError(f"manifest {manifest_sha[:12]}… for {relative} is unreadable ({exc})") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        done.append((relative, "fetched"))
    return done
