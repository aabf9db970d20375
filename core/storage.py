"""Checkpoint uploads: safe unpacking, the checks of DESIGN §6, and publishing to the artifact store.

An upload is streamed to a temporary file while its sha256 is computed, unpacked into a
temporary folder with every safety rule applied, checked, and only then renamed to the API's
own copy `<data_dir>/artifacts/checkpoints/<sha256>/`; the archive itself is then published to
the artifact store (core/artifact_store.py) under `checkpoints/<sha256>`, where workers fetch it.
Any failure removes the temporaries: a rejected archive leaves nothing behind. Workers unpack
what they fetch with the same code (`unpack_checked`).
"""
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import anyio

from core.checkpoint_policy import (
    ADAPTER_CONFIG,
    CLIP_CONFIG_NAMES,
    check_folder,
    list_files,
    model_cfg_of,
    read_json,
)
from core.clip_params import estimate_clip_params
from core.config import Settings, get_settings
from core.errors import InvalidCheckpointError, QuotaExceededError, StoreUnavailableError, UnsafeArchiveError
from core.model_config import check_causal_lm_config, check_params_agree, read_config
from core.safetensors_check import read_header

LICENSE_FILES = ("LICENSE", "LICENCE", "COPYING")
# open_clip's hub layout names its weights file; the loader reads the first of these that is present.
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors")
CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredCheckpoint:
    sha256: str
    format: str
    size_bytes: int
    path: Path
    params: int
    already_stored: bool


def _store_root(settings: Settings) -> Path:
    root = settings.artifact_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    return root


def sniff_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    raise UnsafeArchiveError("the upload is not a .tar, .tar.gz or .zip archive", field="body")


def _safe_member_path(name: str, target: Path) -> Path:
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or (pure.parts and ":" in pure.parts[0]):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    if ".." in pure.parts or "\\" in name:
        raise UnsafeArchiveError(f"archive member {name!r} escapes the target folder")
    dest = (target / pure).resolve()
    if not dest.is_relative_to(target.resolve()):
        raise UnsafeArchiveError(f"archive member {name!r} escapes the target folder")
    return dest


class _Budget:
    """Counts entries (files and folders) and unpacked bytes against the caps while unpacking."""

    def __init__(self, settings: Settings, archive_size: int, quota_left: int | None = None):
        self.max_bytes = min(settings.max_unpacked_bytes,
                             int(max(archive_size, 1) * settings.max_compression_ratio))
        self.by_quota = quota_left is not None and quota_left < self.max_bytes
        if self.by_quota:  # what is left of the uploader's storage quota, not only this archive's size
            self.max_bytes = quota_left
        self.max_files = settings.max_archive_files
        self.bytes = 0
        self.files = 0

    def _past(self, what: str) -> None:
        if self.by_quota:
            raise QuotaExceededError(f"{what} past {self.max_bytes} bytes, what is left of your storage quota: "
                                     f"withdraw models you no longer need, or ask an admin")
        raise UnsafeArchiveError(f"{what} past {self.max_bytes} bytes (size or compression-ratio cap): refused as "
                                 f"a possible archive bomb")

    def add_entry(self) -> None:
        # Folders count too: 30,000 empty folders cost the store as much as 30,000 files.
        self.files += 1
        if self.files > self.max_files:
            raise UnsafeArchiveError(f"archive holds more than {self.max_files} files and folders")

    def expect_bytes(self, name: str, declared: int) -> None:
        """Refuse a member whose declared size alone passes the cap, before reading any of it."""
        if self.bytes + declared > self.max_bytes:
            self._past(f"archive member {name!r} declares {declared:,} bytes: the archive would unpack")

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            self._past("archive unpacks")


def _copy_limited(src, dest: Path, budget: _Budget) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        while chunk := src.read(CHUNK):
            budget.add_bytes(len(chunk))
            out.write(chunk)


# Metadata members (GNU long names, pax headers) are read whole into memory by tarfile: bounded here,
# from their 512-byte header, before tarfile reads them. Real ones are a few hundred bytes.
MAX_TAR_META_BYTES = 64 * 1024
MAX_TAR_META_TOTAL = 1024 * 1024
MAX_MEMBER_NAME = 1024
_TAR_META_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                   tarfile.SOLARIS_XHDTYPE)


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile's member header, refusing metadata members past the caps and sparse files before reading them.

    `_proc_member` is where tarfile dispatches on a parsed 512-byte header, before reading a long name or
    pax body; the sparse readers loop over blocks for as long as the archive says. (Private methods of
    CPython's tarfile, stable since 3.2; tests/core/test_storage.py holds the archives that would
    otherwise cost hundreds of MiB.)"""

    def _proc_member(self, tarfile_):
        if self.type in _TAR_META_TYPES:
            total = getattr(tarfile_, "_evalboard_meta_bytes", 0) + self.size
            tarfile_._evalboard_meta_bytes = total
            if self.size > MAX_TAR_META_BYTES or total > MAX_TAR_META_TOTAL:
                raise UnsafeArchiveError(f"archive has a {self.size:,}-byte long-name or pax header (at most "
                                         f"{MAX_TAR_META_BYTES:,} each, {MAX_TAR_META_TOTAL:,} in all, are read)")
        elif self.type == tarfile.GNUTYPE_SPARSE:
            raise UnsafeArchiveError(f"archive member {self.name!r} is a sparse file; sparse files are not allowed")
        return super()._proc_member(tarfile_)

    def _refuse_sparse(self, *_):
        raise UnsafeArchiveError("archive holds a sparse file (GNU.sparse pax headers); sparse files are not allowed")

    _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _refuse_sparse


def _unpack_tar(archive: Path, target: Path, budget: _Budget) -> None:
    with tarfile.open(archive, "r:*", tarinfo=_BoundedTarInfo) as tar:
        for member in tar:
            budget.add_entry()
            if len(member.name) > MAX_MEMBER_NAME:
                raise UnsafeArchiveError(f"archive member name is {len(member.name):,} characters long "
                                         f"(at most {MAX_MEMBER_NAME})")
            dest = _safe_member_path(member.name, target)
            if member.issym() or member.islnk():
                raise UnsafeArchiveError(f"archive member {member.name!r} is a link; links are not allowed")
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise UnsafeArchiveError(f"archive member {member.name!r} is not a regular file (device, fifo …)")
            budget.expect_bytes(member.name, member.size)
            _copy_limited(tar.extractfile(member), dest, budget)
        tar.members = []  # the member list tarfile keeps is bounded by the entry cap; drop it at once


# zipfile reads these compression methods; anything else (deflate64 = 9, …) would fail mid-unpack.
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
               zipfile.ZIP_LZMA: "lzma"}
ZIP_METHOD_NAMES = {9: "deflate64", 10: "PKWARE implode", 93: "zstandard", 95: "xz", 98: "ppmd", 99: "AES"}


def _zip_directory_bounded(archive: Path, budget: _Budget) -> None:
    """Refuse a central directory past the entry cap before zipfile parses it (one object per entry)."""
    with open(archive, "rb") as f:
        end = zipfile._EndRecData(f)  # the end-of-central-directory record zipfile itself reads first
    if end is None:
        raise UnsafeArchiveError("archive is corrupt or truncated: no zip end-of-central-directory record",
                                 field="body")
    entries, directory_bytes = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if entries > budget.max_files or directory_bytes > max(64 * 1024, budget.max_files * 512):
        raise UnsafeArchiveError(f"archive holds more than {budget.max_files} files and folders "
                                 f"({entries:,} entries, a {directory_bytes:,}-byte directory)")


def _unpack_zip(archive: Path, target: Path, budget: _Budget) -> None:
    _zip_directory_bounded(archive, budget)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            if info.flag_bits & 0x1:
                raise UnsafeArchiveError(f"archive member {info.filename!r} is encrypted; encrypted archives are "
                                         f"not accepted")
            if info.compress_type not in ZIP_METHODS:
                method = ZIP_METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
                raise UnsafeArchiveError(f"archive member {info.filename!r} is compressed with {method}, which is "
                                         f"not supported: use deflate ({', '.join(ZIP_METHODS.values())} are read)")
        budget.expect_bytes("(all members together)", sum(i.file_size for i in infos if not i.is_dir()))
        for info in infos:
            budget.add_entry()
            if len(info.filename) > MAX_MEMBER_NAME:
                raise UnsafeArchiveError(f"archive member name is {len(info.filename):,} characters long "
                                         f"(at most {MAX_MEMBER_NAME})")
            dest = _safe_member_path(info.filename, target)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"archive member {info.filename!r} is a link; links are not allowed")
            # Permission bits with no file type (zipfile.writestr writes 0o600) mean a regular file.
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeArchiveError(f"archive member {info.filename!r} is not a regular file")
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as src:
                _copy_limited(src, dest, budget)


def _model_root(unpacked: Path) -> Path:
    """Archives often wrap the model in one top folder; the model root is where config files are."""
    entries = [p for p in unpacked.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        beside = sorted(p.name for p in unpacked.iterdir() if p != entries[0])
        if beside:  # hidden entries next to the model folder would be kept in the store, unchecked
            raise InvalidCheckpointError(f"{', '.join(beside)}: nothing may sit beside the model folder "
                                         f"{entries[0].name!r} in the archive")
        return entries[0]
    return unpacked


def safetensors_param_count(path: Path) -> int:
    """Parameters from the safetensors header alone, checked to tile the file exactly: nothing is allocated."""
    return read_header(path).params


def _weights(root: Path, family: str, files: list[str]) -> dict[str, int]:
    """{weights file: parameter count} of exactly the files the family's loader reads; strays refused.

    Every file counted is one the loader loads: a *.safetensors beside them would add to the count
    shown on the board without being part of the model.
    """
    weights = sorted(f for f in files if f.endswith(".safetensors"))
    if not weights:
        raise InvalidCheckpointError("no .safetensors weights found")
    headers = {name: read_header(root / name) for name in weights}
    if family == "causal-lm" and ADAPTER_CONFIG in files:  # a LoRA adapter: its own weights file, nothing else
        if weights != ["adapter_model.safetensors"]:
            raise InvalidCheckpointError(f"a LoRA adapter's weights are adapter_model.safetensors alone (found "
                                         f"{', '.join(weights)})")
    elif family == "causal-lm":
        index_path = root / "model.safetensors.index.json"
        if index_path.is_file():
            _check_index(read_json(index_path), headers)
        elif weights != ["model.safetensors"]:
            stray = [w for w in weights if w != "model.safetensors"]
            raise InvalidCheckpointError(f"{', '.join(stray)}: weights files other than model.safetensors need a "
                                         f"model.safetensors.index.json listing them (transformers reads no others)")
    else:
        read = [name for name in OPEN_CLIP_WEIGHTS if name in headers][:1] or weights
        stray = [w for w in weights if w not in read]
        if stray:
            raise InvalidCheckpointError(f"{', '.join(stray)}: open_clip reads only {read[0]} here; remove the other "
                                         f"weights files")
    return {name: header.params for name, header in headers.items()}


def _check_index(index, headers: dict) -> None:
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise InvalidCheckpointError("model.safetensors.index.json has no weight_map of tensor → file")
    listed = set(weight_map.values())
    missing = sorted(listed - headers.keys())
    if missing:
        raise InvalidCheckpointError(f"model.safetensors.index.json lists {', '.join(missing)}, which the checkpoint "
                                     f"does not hold")
    unlisted = sorted(headers.keys() - listed)
    if unlisted:
        raise InvalidCheckpointError(f"{', '.join(unlisted)}: not listed in model.safetensors.index.json, so never "
                                     f"loaded; remove it")
    for file, header in headers.items():
        mapped = {tensor for tensor, f in weight_map.items() if f == file}
        if mapped != header.tensors.keys():
            raise InvalidCheckpointError(f"{file}: its tensors differ from what model.safetensors.index.json maps "
                                         f"to it")


def check_model_folder(root: Path, family: str, max_params: int) -> int:
    """Refuse what DESIGN §6 forbids and what the family needs but lacks; return the weights' parameter count."""
    parsed = check_folder(root, family)  # layer 1: allow-listed files, no JSON that chooses code
    files = list_files(root)
    weights = _weights(root, family, files)
    readme = root / "README.md"
    if not readme.is_file() or len(readme.read_text(errors="replace").strip()) < 10:
        raise InvalidCheckpointError("a model card (README.md with some text) is required")
    if not any(_is_license_file(root, name) for name in files) and not license_in_card(readme):
        raise InvalidCheckpointError("a license is required: a LICENSE file or a 'license:' line in README.md")
    # The count shown is the weights' own (their headers tile the files); the config must agree with it.
    params = sum(weights.values())
    if family == "causal-lm" and ADAPTER_CONFIG not in parsed:  # an adapter's config was checked by the policy
        config = _check_causal_lm(root)
        check_params_agree(config, params, max_params)
    elif family == "clip":
        _check_clip(parsed, params, max_params)
    if params > max_params:
        raise InvalidCheckpointError(f"the checkpoint has about {params:,} parameters, over this service's cap of "
                                     f"{max_params:,}")
    return params


def _is_license_file(root: Path, name: str) -> bool:
    return "/" not in name and name.upper().startswith(LICENSE_FILES) and (root / name).stat().st_size > 0


def license_in_card(readme: Path) -> bool:
    """A Hugging Face model card names its license in the YAML front matter."""
    text = readme.read_text(errors="replace")
    return text.startswith("---") and any(line.strip().startswith("license:") for line in text.split("---")[1].splitlines())


# An exact count (open_clip's plain CLIP) leaves room only for rounding in how a checkpoint stores its scalars.
CLIP_PARAMS_TOLERANCE = 0.01


def _check_clip(parsed: dict, params: int, max_params: int) -> None:
    """The weights against the count an open_clip model config implies, where it can be told from the config."""
    name = next(n for n in CLIP_CONFIG_NAMES if n in parsed)
    claimed = estimate_clip_params(model_cfg_of(parsed[name]))
    if claimed is None:
        return
    if claimed > max_params:
        raise InvalidCheckpointError(f"{name} implies {claimed:,} parameters, over this service's cap of "
                                     f"{max_params:,}")
    if abs(params - claimed) > claimed * CLIP_PARAMS_TOLERANCE:
        raise InvalidCheckpointError(f"the weights hold {params:,} parameters but {name} describes a model of "
                                     f"{claimed:,}: the weights must be the configured model's own")


def _check_causal_lm(root: Path) -> dict:
    """Check the config and tokenizer; return the config."""
    config = read_config(root)
    check_causal_lm_config(config)
    if not any((root / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise InvalidCheckpointError("no tokenizer files found (tokenizer.json, tokenizer.model or vocab.json)")
    return config


async def store_upload(chunks: AsyncIterator[bytes], *, family: str, settings: Settings | None = None,
                       expected_sha256: str | None = None, quota_left: int | None = None) -> StoredCheckpoint:
    """Stream an upload into the store. Raises UnsafeArchiveError/InvalidCheckpointError, leaving nothing."""
    settings = settings or get_settings()
    root = _store_root(settings)
    digest, size = hashlib.sha256(), 0
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=root)
    tmp_archive = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if quota_left is not None and size > quota_left:
                    raise QuotaExceededError(f"this upload is larger than what is left of your storage quota "
                                             f"({quota_left} of {settings.max_stored_bytes_per_user} bytes)")
                if size > settings.max_upload_bytes:
                    raise UnsafeArchiveError(f"upload is larger than {settings.max_upload_bytes} bytes", field="body")
                digest.update(chunk)
                out.write(chunk)
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise UnsafeArchiveError(f"the uploaded bytes hash to {digest.hexdigest()}, not the declared "
                                     f"{expected_sha256}: the upload is corrupt or incomplete", field="sha256")
        # Unpacking and checking are blocking work: off the event loop, so other requests go on.
        stored = await anyio.to_thread.run_sync(_unpack_into_store, tmp_archive, size, digest.hexdigest(), family,
                                                settings, quota_left)
        # Checked: now the archive itself goes to the artifact store, where every worker fetches it by hash.
        await anyio.to_thread.run_sync(publish_checkpoint, tmp_archive, stored.sha256, settings)
        return stored
    finally:
        tmp_archive.unlink(missing_ok=True)


def _unpack_into_store(archive: Path, size: int, sha: str, family: str, settings: Settings,
                       quota_left: int | None = None) -> StoredCheckpoint:
    if size == 0:
        raise UnsafeArchiveError("the upload is empty", field="body")
    root = _store_root(settings)
    fmt = sniff_format(archive)
    final = root / sha
    if final.exists():
        params = check_model_folder(_model_root(final), family, settings.max_params())
        return StoredCheckpoint(sha, fmt, size, _model_root(final), params, True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        try:
            (_unpack_zip if fmt == "zip" else _unpack_tar)(archive, tmp_dir, _Budget(settings, size, quota_left))
        except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                NotImplementedError, RuntimeError) as exc:  # zipfile raises the last two for methods/encryption
            raise UnsafeArchiveError(f"archive is corrupt or truncated: {exc}", field="body") from exc
        params = check_model_folder(_model_root(tmp_dir), family, settings.max_params())
        try:
            tmp_dir.rename(final)
        except OSError:
            if not final.exists():
                raise
            # The same content finished uploading concurrently: keep the first copy.
            return StoredCheckpoint(sha, fmt, size, _model_root(final), params, True)
        return StoredCheckpoint(sha, fmt, size, _model_root(final), params, False)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def publish_checkpoint(archive: Path, sha256: str, settings: Settings) -> None:
    """Put the checked upload into the artifact store under `checkpoints/<sha256>` (once; objects are immutable)."""
    from core.artifact_store import ArtifactStoreError, checkpoint_key, get_store
    try:
        get_store(settings).put_file(checkpoint_key(sha256), archive)
    except ArtifactStoreError as exc:
        raise StoreUnavailableError(f"the artifact store is unavailable: {exc}") from exc


def unpack_checked(archive: Path, target: Path, family: str, settings: Settings) -> Path:
    """Unpack a stored archive into `target` under the upload's caps and checks; returns the model root.

    Workers use this on what they fetch from the artifact store (runners/worker_cache.py), so a
    checkpoint reaches a loader only through the same rules as an upload, on every machine."""
    fmt = sniff_format(archive)
    try:
        (_unpack_zip if fmt == "zip" else _unpack_tar)(archive, target, _Budget(settings, archive.stat().st_size))
    except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as exc:
        raise UnsafeArchiveError(f"archive is corrupt or truncated: {exc}", field="body") from exc
    root = _model_root(target)
    check_model_folder(root, family, settings.max_params())
    return root


def quota_left(session, *, user_id: int, settings: Settings | None = None) -> int:
    """Bytes the user may still store: the per-user quota less the checkpoints they first uploaded.
    Raises QuotaExceededError when nothing is left, before a byte of the upload is read."""
    from sqlalchemy import func
    from sqlmodel import select

    from core.models import Checkpoint
    settings = settings or get_settings()
    used = session.exec(select(func.coalesce(func.sum(Checkpoint.size_bytes), 0))
                        .where(Checkpoint.uploaded_by == user_id)).one()
    left = settings.max_stored_bytes_per_user - int(used)
    if left <= 0:
        raise QuotaExceededError(f"your checkpoints use {int(used)} bytes of your {settings.max_stored_bytes_per_user}-"
                                 f"byte storage quota: withdraw models you no longer need, or ask an admin")
    return left
