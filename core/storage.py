"""Content-addressed artifact store with safe unpacking (DESIGN §6).

An upload is streamed to a temporary file while its sha256 is computed, unpacked into a
temporary folder under the store with every safety rule applied, checked, and only then
renamed to `checkpoints/<sha256>/`. Any failure removes the temporaries: a rejected
archive leaves nothing behind.
"""
import hashlib
import json
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import anyio

from core.clip_params import estimate_clip_params
from core.config import Settings, get_settings
from core.errors import InvalidCheckpointError, UnsafeArchiveError
from core.model_config import check_causal_lm_config, estimate_params, read_config

LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING")
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
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
    """Counts unpacked bytes and files against the caps while unpacking."""

    def __init__(self, settings: Settings, archive_size: int):
        self.max_bytes = min(settings.max_unpacked_bytes,
                             int(max(archive_size, 1) * settings.max_compression_ratio))
        self.max_files = settings.max_archive_files
        self.bytes = 0
        self.files = 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise UnsafeArchiveError(f"archive holds more than {self.max_files} files")

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise UnsafeArchiveError(f"archive unpacks past {self.max_bytes} bytes "
                                     f"(size or compression-ratio cap): refused as a possible archive bomb")


def _copy_limited(src, dest: Path, budget: _Budget) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        while chunk := src.read(CHUNK):
            budget.add_bytes(len(chunk))
            out.write(chunk)


def _unpack_tar(archive: Path, target: Path, budget: _Budget) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            dest = _safe_member_path(member.name, target)
            if member.issym() or member.islnk():
                raise UnsafeArchiveError(f"archive member {member.name!r} is a link; links are not allowed")
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise UnsafeArchiveError(f"archive member {member.name!r} is not a regular file (device, fifo …)")
            budget.add_file()
            _copy_limited(tar.extractfile(member), dest, budget)


def _unpack_zip(archive: Path, target: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
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
            budget.add_file()
            with zf.open(info) as src:
                _copy_limited(src, dest, budget)


def _model_root(unpacked: Path) -> Path:
    """Archives often wrap the model in one top folder; the model root is where config files are."""
    entries = [p for p in unpacked.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked


def safetensors_param_count(path: Path) -> int:
    """Parameters from the safetensors header alone: nothing is allocated or unpickled."""
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise InvalidCheckpointError(f"{path.name}: not a valid safetensors file (too short for a header)")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > 100 * 1024 * 1024:
            raise InvalidCheckpointError(f"{path.name}: safetensors header is implausibly large")
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidCheckpointError(f"{path.name}: not a valid safetensors file ({exc})") from exc
    if not isinstance(header, dict):
        raise InvalidCheckpointError(f"{path.name}: not a valid safetensors file (header is not a JSON object)")
    total = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        shape = meta.get("shape") if isinstance(meta, dict) else None
        # Dimensions must be non-negative ints: a string dimension would make `count *= dim` repeat a string.
        if not isinstance(shape, list) or not all(type(dim) is int and dim >= 0 for dim in shape):
            raise InvalidCheckpointError(f"{path.name}: tensor {name!r} has no valid shape in the safetensors header")
        count = 1
        for dim in shape:
            count *= dim
        total += count
    return total


def check_model_folder(root: Path, family: str, max_params: int) -> int:
    """Refuse what DESIGN §6 forbids and what the family needs but lacks; return the parameter count."""
    files = [p for p in root.rglob("*") if p.is_file()]
    pickles = sorted(p.name for p in files if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise InvalidCheckpointError(f"pickle-format weights are refused ({', '.join(pickles)}): "
                                     f"convert them to safetensors")
    weights = [p for p in files if p.suffix == ".safetensors"]
    if not weights:
        raise InvalidCheckpointError("no .safetensors weights found")
    readme = root / "README.md"
    if not readme.is_file() or len(readme.read_text(errors="replace").strip()) < 10:
        raise InvalidCheckpointError("a model card (README.md with some text) is required")
    if not any((root / name).is_file() for name in LICENSE_FILES) and not license_in_card(readme):
        raise InvalidCheckpointError("a license is required: a LICENSE file or a 'license:' line in README.md")
    claimed = 0
    if family == "causal-lm":
        claimed = _check_causal_lm(root)
    elif family == "clip":
        claimed = _check_clip(root)
    params = max(sum(safetensors_param_count(p) for p in weights), claimed)
    if params > max_params:
        raise InvalidCheckpointError(f"the checkpoint has about {params:,} parameters, over this service's cap of "
                                     f"{max_params:,}")
    return params


def license_in_card(readme: Path) -> bool:
    """A Hugging Face model card names its license in the YAML front matter."""
    text = readme.read_text(errors="replace")
    return text.startswith("---") and any(line.strip().startswith("license:") for line in text.split("---")[1].splitlines())


def _check_clip(root: Path) -> int:
    """An open_clip model config: embed_dim, vision_cfg and text_cfg, bare or under model_cfg (hub layout).

    Returns the parameter count the config implies (0 where it cannot be told from the config alone)."""
    for path in sorted(root.glob("*.json")):
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        cfg = raw.get("model_cfg", raw) if isinstance(raw, dict) else None
        if isinstance(cfg, dict) and {"embed_dim", "vision_cfg", "text_cfg"} <= cfg.keys():
            return estimate_clip_params(cfg) or 0
    raise InvalidCheckpointError("a clip checkpoint needs an open_clip model config JSON (embed_dim, vision_cfg, "
                                 "text_cfg — bare, or under model_cfg as in open_clip_config.json)")


def _check_causal_lm(root: Path) -> int:
    """Check the config and tokenizer; return the parameter count the config implies."""
    config = read_config(root)
    check_causal_lm_config(config)
    if not any((root / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise InvalidCheckpointError("no tokenizer files found (tokenizer.json, tokenizer.model or vocab.json)")
    return estimate_params(config)


async def store_upload(chunks: AsyncIterator[bytes], *, family: str, settings: Settings | None = None,
                       expected_sha256: str | None = None) -> StoredCheckpoint:
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
                if size > settings.max_upload_bytes:
                    raise UnsafeArchiveError(f"upload is larger than {settings.max_upload_bytes} bytes", field="body")
                digest.update(chunk)
                out.write(chunk)
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise UnsafeArchiveError(f"the uploaded bytes hash to {digest.hexdigest()}, not the declared "
                                     f"{expected_sha256}: the upload is corrupt or incomplete", field="sha256")
        # Unpacking and checking are blocking work: off the event loop, so other requests go on.
        return await anyio.to_thread.run_sync(_unpack_into_store, tmp_archive, size, digest.hexdigest(), family,
                                              settings)
    finally:
        tmp_archive.unlink(missing_ok=True)


def _unpack_into_store(archive: Path, size: int, sha: str, family: str, settings: Settings) -> StoredCheckpoint:
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
            (_unpack_zip if fmt == "zip" else _unpack_tar)(archive, tmp_dir, _Budget(settings, size))
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
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
