"""The dataset mirror: standard benchmark data on disk, so offline workers can score named lm-eval tasks.

`evalboard datasets pull` (evaluators/language/mirror.py) fetches each dataset an lm-eval task loads
and writes it here; workers read it with the hub out of reach. The layout is the hub's own Parquet
conversion, one folder per (dataset_path, dataset_name) as lm-eval's task configs name them:

    <mirror>/<org>/<repo>/<config or "default">/
        manifest.json                      revision, load kwargs, per split its files with sha256 and rows
        <split>/0000.parquet               written by datasets' Dataset.to_parquet (features kept)

A manifest is the dataset's identity: its sha256 goes into every score's provenance, and a file
that does not match it is refused. Plain files and standard library only: this module is imported
by the API's process too (no datasets, no lm-eval).
"""
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path


MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
DEFAULT_CONFIG = "default"
# A path component we create or read: the hub's own alphabet for org, repo, config and split names.
_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class DatasetMirrorError(Exception):
    """The mirror cannot give a task its data. Deliberately not a ValueError/RuntimeError: the evaluation
    child reports it as an infrastructure fault (the worker's mirror is at fault, not the model)."""


def dataset_key(dataset_path: str, dataset_name: str | None) -> str:
    return f"{dataset_path}:{dataset_name}" if dataset_name else dataset_path


def pull_hint(task: str | None = None) -> str:
    target = f"--task {task}" if task else "SUITE"
    return (f"run `evalboard datasets pull {target}` on a connected machine and copy the mirror to this "
            f"worker's DATASET_MIRROR_DIR")


def _component(value: str, what: str) -> str:
    if not _COMPONENT.match(value) or value in (".", "..") or ".." in value:
        raise DatasetMirrorError(f"{what} {value!r} is not a plain name; the mirror will not make a path of it")
    return value


def dataset_folder(mirror: Path, dataset_path: str, dataset_name: str | None) -> Path:
    """Where a dataset lives in the mirror; refuses names that would leave it (`..`, `/`, absolute)."""
    parts = dataset_path.split("/")
    if not 1 <= len(parts) <= 2:
        raise DatasetMirrorError(f"dataset path {dataset_path!r} is not a hub name (org/repo)")
    for part in parts:
        _component(part, "dataset path component")
    return mirror.joinpath(*parts, _component(dataset_name or DEFAULT_CONFIG, "dataset name"))


def split_file(split: str) -> str:
    return f"{_component(split, 'split')}/0000.parquet"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, *, dataset_path: str, dataset_name: str | None, revision: str,
                   load_kwargs: dict, splits: dict[str, int], requested_revision: str | None = None) -> dict:
    """Record what was written under `folder` (one Parquet file per split, `splits` = rows per split).
    `revision` is the hub commit fetched; `requested_revision` what the task's config pinned (a branch,
    tag or commit; None when it pins nothing)."""
    manifest = {
        "manifest_version": MANIFEST_VERSION, "dataset_path": dataset_path, "dataset_name": dataset_name,
        "revision": revision, "requested_revision": requested_revision, "load_kwargs": load_kwargs,
        "splits": {split: {"num_rows": rows,
                           "files": [{"path": split_file(split), "sha256": sha256_file(folder / split_file(split)),
                                      "bytes": (folder / split_file(split)).stat().st_size}]}
                   for split, rows in sorted(splits.items())},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


@dataclass(frozen=True)
class VerifiedDataset:
    key: str
    folder: Path
    manifest: dict
    manifest_sha256: str

    @property
    def revision(self) -> str:
        return self.manifest["revision"]

    def answers(self, requested: str | None) -> bool:
        """Whether this copy is what a task pinning `requested` (None: nothing) asks for."""
        return requested is None or requested in (self.revision, self.manifest.get("requested_revision"))

    def data_files(self) -> dict[str, list[str]]:
        return {split: [str(self.folder / f["path"]) for f in entry["files"]]
                for split, entry in self.manifest["splits"].items()}

    def provenance(self) -> dict:
        return {"revision": self.revision, "manifest_sha256": self.manifest_sha256}


def verify_dataset(mirror: Path, dataset_path: str, dataset_name: str | None, *,
                   task: str | None = None) -> VerifiedDataset:
    """The dataset's manifest and files, every file's sha256 checked; DatasetMirrorError naming the
    dataset, what is wrong and how to fix it otherwise."""
    key = dataset_key(dataset_path, dataset_name)
    folder = dataset_folder(mirror, dataset_path, dataset_name)
    if not mirror.is_dir():
        raise DatasetMirrorError(f"dataset {key} is needed but there is no dataset mirror at {mirror}; "
                                 f"{pull_hint(task)}")
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise DatasetMirrorError(f"dataset {key} is not in the dataset mirror {mirror}; {pull_hint(task)}")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
        entries = [(split, f["path"], f["sha256"]) for split, entry in manifest["splits"].items()
                   for f in entry["files"]]
        if (manifest["dataset_path"], manifest["dataset_name"]) != (dataset_path, dataset_name):
            raise ValueError("it names another dataset")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetMirrorError(f"dataset {key}: its mirror manifest is unreadable ({exc}); "
                                 f"{pull_hint(task)}") from exc
    for split, relative, published in entries:
        if relative != split_file(split):  # a manifest pointing outside its own folder is not ours
            raise DatasetMirrorError(f"dataset {key}: manifest lists {relative!r} for split {split!r}; "
                                     f"{pull_hint(task)}")
        path = folder / relative
        if not path.is_file():
            raise DatasetMirrorError(f"dataset {key}: {relative} is missing from the mirror; {pull_hint(task)}")
        digest = sha256_file(path)
        if digest != published:
            raise DatasetMirrorError(f"dataset {key}: {relative} does not match its manifest (sha256 "
                                     f"{digest[:12]} ≠ {published[:12]}); {pull_hint(task)}")
    return VerifiedDataset(key, folder, manifest, hashlib.sha256(raw).hexdigest())


# --- non-dataset resources a task needs offline (IFEval's NLTK sentence tokenizer) ---------------------------

NLTK_FOLDER = "nltk_data"
_TREE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def nltk_dir(mirror: Path) -> Path:
    return mirror / NLTK_FOLDER


def _tree_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not p.is_symlink() and p.name != MANIFEST)


def write_tree_manifest(folder: Path, *, resources: list[str], revision: str) -> dict:
    """Record every file under `folder` (NLTK's data layout, as nltk.download wrote it)."""
    manifest = {"manifest_version": MANIFEST_VERSION, "resources": sorted(resources), "revision": revision,
                "files": [{"path": rel, "sha256": sha256_file(folder / rel), "bytes": (folder / rel).stat().st_size}
                          for rel in _tree_files(folder)]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def verify_tree(mirror: Path, resources: tuple[str, ...], *, task: str | None = None) -> VerifiedDataset:
    """The mirror's NLTK data, every file checked, holding `resources`; DatasetMirrorError otherwise."""
    folder = nltk_dir(mirror)
    key = "nltk:" + ",".join(resources)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise DatasetMirrorError(f"NLTK data {', '.join(resources)} is not in the dataset mirror {mirror}; "
                                 f"{pull_hint(task)}")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
        entries = [(f["path"], f["sha256"]) for f in manifest["files"]]
        missing = set(resources) - set(manifest["resources"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetMirrorError(f"the mirror's NLTK manifest is unreadable ({exc}); {pull_hint(task)}") from exc
    if missing:
        raise DatasetMirrorError(f"NLTK data {', '.join(sorted(missing))} is not in the dataset mirror {mirror}; "
                                 f"{pull_hint(task)}")
    for relative, published in entries:
        parts = Path(relative).parts
        if not parts or not all(_TREE_PART.match(p) and ".." not in p for p in parts):
            raise DatasetMirrorError(f"the mirror's NLTK manifest lists {relative!r}; {pull_hint(task)}")
        path = folder / relative
        if path.is_symlink() or not path.is_file():
            raise DatasetMirrorError(f"NLTK data: {relative} is missing from the mirror; {pull_hint(task)}")
        if sha256_file(path) != published:
            raise DatasetMirrorError(f"NLTK data: {relative} does not match its manifest; {pull_hint(task)}")
    return VerifiedDataset(key, folder, manifest, hashlib.sha256(raw).hexdigest())


def verify_mirror(mirror: Path) -> list[tuple[str, str | None]]:
    """Every dataset (and the NLTK data) in the mirror as (key, problem or None), for `evalboard datasets verify`."""
    found = []
    for manifest_path in sorted(mirror.rglob(MANIFEST)) if mirror.is_dir() else []:
        if manifest_path.parent == nltk_dir(mirror):
            try:
                verify_tree(mirror, ())
                found.append((NLTK_FOLDER, None))
            except DatasetMirrorError as exc:
                found.append((NLTK_FOLDER, str(exc)))
            continue
        try:
            manifest = json.loads(manifest_path.read_text())
            path, name = manifest["dataset_path"], manifest["dataset_name"]
        except (ValueError, KeyError, TypeError) as exc:
            found.append((str(manifest_path.parent.relative_to(mirror)), f"unreadable manifest ({exc})"))
            continue
        try:
            if dataset_folder(mirror, path, name) != manifest_path.parent:
                raise DatasetMirrorError(f"manifest names {dataset_key(path, name)} but lies elsewhere")
            verify_dataset(mirror, path, name)
            found.append((dataset_key(path, name), None))
        except DatasetMirrorError as exc:
            found.append((dataset_key(path, name), str(exc)))
    return found
