"""core.storage on real archives: hostile ones are refused and leave nothing behind, valid ones are stored once.

Every archive is built here, in memory, from the files of the session's tiny GPT-2 model folder.
"""
import asyncio
import hashlib
import io
import json
import os
import stat
import struct
import tarfile
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import InvalidCheckpointError, UnsafeArchiveError
from core.storage import safetensors_param_count, store_upload
from tests.archives import deep_json, tar_archive, zip_archive

ZEROS = 50 * 1024 * 1024  # 50 MB of zeros compresses about 1000x: far past the default 200x cap


# --- building archives -------------------------------------------------------------------------------------------

def tar_member(name: str, type_: bytes = tarfile.REGTYPE, *, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = type_, size, linkname
    return info


def zip_member(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zip_member("zeros.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as out:
            for _ in range(ZEROS // (1 << 20)):
                out.write(bytes(1 << 20))
    return buf.getvalue()


# --- running the store -------------------------------------------------------------------------------------------

async def chunked(data: bytes, size: int = 64 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def store(data: bytes, settings: Settings, family: str = "causal-lm"):
    return asyncio.run(store_upload(chunked(data), family=family, settings=settings))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path)


def store_root(settings: Settings) -> Path:
    return settings.artifact_dir / "checkpoints"


def assert_nothing_left(settings: Settings) -> None:
    """The store is empty (no checkpoint, no .upload-*/.unpack-* temporary) and nothing else was written."""
    assert list(store_root(settings).iterdir()) == []
    written = sorted(p.relative_to(settings.data_dir).as_posix() for p in settings.data_dir.rglob("*"))
    assert written == ["artifacts", "artifacts/checkpoints"]


def assert_refused(data: bytes, settings: Settings, error: type[Exception], reason: str) -> None:
    with pytest.raises(error) as caught:
        store(data, settings)
    assert reason in str(caught.value)
    assert_nothing_left(settings)


# --- hostile archives --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil.txt", "../../../evil.txt"])
def test_zip_slip_in_zip_is_refused(model_files, settings, name):
    data = zip_archive(model_files, extra=((zip_member(name), b"pwned"),))
    assert_refused(data, settings, UnsafeArchiveError, "escapes the target folder")
    assert not (settings.data_dir / "evil.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "../../../evil.txt", "sub/../../evil.txt"])
def test_zip_slip_in_tar_is_refused(model_files, settings, name):
    data = tar_archive(model_files, extra=(tar_member(name, size=5),))
    assert_refused(data, settings, UnsafeArchiveError, "escapes the target folder")
    assert not (settings.data_dir / "evil.txt").exists()


def test_absolute_member_path_is_refused(model_files, settings):
    outside = Path(f"/tmp/evil-{uuid.uuid4().hex}")
    data = tar_archive(model_files, extra=(tar_member(str(outside), size=5),))
    assert_refused(data, settings, UnsafeArchiveError, "absolute path")
    assert not outside.exists()


def test_absolute_member_path_in_zip_is_refused(model_files, settings):
    outside = Path(f"/tmp/evil-{uuid.uuid4().hex}")
    data = zip_archive(model_files, extra=((zip_member(str(outside)), b"pwned"),))
    assert_refused(data, settings, UnsafeArchiveError, "absolute path")
    assert not outside.exists()


def test_symlink_in_tar_pointing_outside_is_refused(model_files, settings):
    outside = Path(f"/tmp/evil-{uuid.uuid4().hex}")
    outside.mkdir()
    try:
        # The classic attack: a link to a folder outside, then a file written through it.
        data = tar_archive(model_files, extra=(tar_member("weights", tarfile.SYMTYPE, linkname=str(outside)),
                                               tar_member("weights/pwned.txt", size=5)))
        assert_refused(data, settings, UnsafeArchiveError, "is a link")
        assert list(outside.iterdir()) == []
    finally:
        outside.rmdir()


def test_hardlink_in_tar_is_refused(model_files, settings):
    data = tar_archive(model_files, extra=(tar_member("passwd", tarfile.LNKTYPE, linkname="/etc/passwd"),))
    assert_refused(data, settings, UnsafeArchiveError, "is a link")


def test_symlink_in_zip_is_refused(model_files, settings):
    data = zip_archive(model_files, extra=((zip_member("passwd", stat.S_IFLNK | 0o777), b"/etc/passwd"),))
    assert_refused(data, settings, UnsafeArchiveError, "is a link")


@pytest.mark.parametrize("type_", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE], ids=["chr", "blk", "fifo"])
def test_device_or_fifo_in_tar_is_refused(model_files, settings, type_):
    data = tar_archive(model_files, extra=(tar_member("dev-null", type_),))
    assert_refused(data, settings, UnsafeArchiveError, "not a regular file")


def test_fifo_in_zip_is_refused(model_files, settings):
    data = zip_archive(model_files, extra=((zip_member("pipe", stat.S_IFIFO | 0o644), b""),))
    assert_refused(data, settings, UnsafeArchiveError, "not a regular file")


def test_zip_bomb_is_refused_by_the_default_compression_ratio_cap(settings):
    data = zip_bomb()
    assert len(data) * settings.max_compression_ratio < ZEROS  # the default cap is what trips it
    assert_refused(data, settings, UnsafeArchiveError, "archive bomb")


def test_tar_gz_bomb_is_refused_by_the_default_compression_ratio_cap(settings):
    data = tar_archive({}, extra=(tar_member("zeros.bin", size=ZEROS),))
    assert_refused(data, settings, UnsafeArchiveError, "archive bomb")


def test_unpacked_size_cap_applies_to_plain_tar(model_files, tmp_path):
    settings = Settings(data_dir=tmp_path, max_unpacked_bytes=100_000)
    assert_refused(tar_archive(model_files, mode="w"), settings, UnsafeArchiveError, "100000 bytes")


def test_too_many_files_is_refused(model_files, tmp_path):
    settings = Settings(data_dir=tmp_path, max_archive_files=3)
    assert len(model_files) > 3
    assert_refused(tar_archive(model_files), settings, UnsafeArchiveError, "more than 3 files")


def test_upload_over_the_size_cap_is_refused_while_streaming(model_files, tmp_path):
    settings = Settings(data_dir=tmp_path, max_upload_bytes=100_000)
    assert_refused(tar_archive(model_files), settings, UnsafeArchiveError, "larger than 100000 bytes")


# --- archive metadata bounded before it is read (issue 16 items 7 and 8) ---------------------------------------------

def write_tar_gz_with_metadata(path: Path, type_: bytes, size: int) -> Path:
    """A .tar.gz whose first member is a `size`-byte GNU long name or pax header, streamed: tiny once compressed."""
    import zlib
    header = tar_member("././@LongLink" if type_ == tarfile.GNUTYPE_LONGNAME else "././@PaxHeader", type_, size=size)
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as out:
        out.write(gz.compress(header.tobuf(format=tarfile.GNU_FORMAT)))
        block = b"a" * (1 << 20)
        for start in range(0, size, len(block)):
            out.write(gz.compress(block[: min(len(block), size - start)]))
        out.write(gz.compress(bytes(-size % 512) + bytes(1024)) + gz.flush())
    return path


@pytest.mark.parametrize("type_", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE, tarfile.XGLTYPE],
                         ids=["gnu-long-name", "pax", "pax-global"])
def test_a_huge_tar_metadata_header_is_refused_before_tarfile_reads_it(settings, tmp_path_factory, type_):
    data = write_tar_gz_with_metadata(tmp_path_factory.mktemp("a") / "meta.tar.gz", type_, 8 * 1024 * 1024).read_bytes()
    assert len(data) < 64 * 1024
    assert_refused(data, settings, UnsafeArchiveError, "long-name or pax header")


def test_a_sparse_tar_member_is_refused(model_files, settings):
    assert_refused(tar_archive(model_files, extra=(tar_member("sparse", tarfile.GNUTYPE_SPARSE),)), settings,
                   UnsafeArchiveError, "sparse")


def test_folders_count_toward_the_entry_cap(model_files, tmp_path):
    settings = Settings(data_dir=tmp_path, max_archive_files=len(model_files) + 5)
    folders = tuple(tar_member(f"d{i}", tarfile.DIRTYPE) for i in range(10))
    assert_refused(tar_archive(model_files, extra=folders), settings, UnsafeArchiveError,
                   f"more than {len(model_files) + 5} files and folders")


def test_zip_folders_count_toward_the_entry_cap(model_files, tmp_path):
    settings = Settings(data_dir=tmp_path, max_archive_files=len(model_files) + 5)
    folders = tuple((zip_member(f"d{i}/", stat.S_IFDIR | 0o755), b"") for i in range(10))
    assert_refused(zip_archive(model_files, extra=folders), settings, UnsafeArchiveError, "files and folders")


def test_a_member_declaring_more_than_the_cap_is_refused_before_it_is_read(model_files, tmp_path):
    settings = Settings(data_dir=tmp_path, max_unpacked_bytes=100_000)
    data = tar_archive({"README.md": b"x"}, extra=(tar_member("model.safetensors", size=200_000),), mode="w")
    assert_refused(data, settings, UnsafeArchiveError, "declares 200,000 bytes")


def _patch_zip_headers(data: bytes, local_offset: int, central_offset: int, value: int) -> bytes:
    """Set a 2-byte field in every local and central-directory header (zipfile writes neither case itself)."""
    data = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        start = data.find(signature)
        while start != -1:
            data[start + offset:start + offset + 2] = struct.pack("<H", value)
            start = data.find(signature, start + 4)
    return bytes(data)


def encrypted_zip(model_files: dict[str, bytes]) -> bytes:
    """Every member flagged encrypted (general-purpose bit 0): all a reader looks at before asking for a password."""
    return _patch_zip_headers(zip_archive(model_files), 6, 8, 0x1)


def deflate64_zip(model_files: dict[str, bytes]) -> bytes:
    """Every member says method 9 (deflate64), which Python's zipfile cannot read."""
    return _patch_zip_headers(zip_archive(model_files), 8, 10, 9)


def test_an_encrypted_zip_is_refused_naming_the_encryption(model_files, settings):
    assert_refused(encrypted_zip(model_files), settings, UnsafeArchiveError, "is encrypted")


def test_a_deflate64_zip_is_refused_naming_the_method(model_files, settings):
    assert_refused(deflate64_zip(model_files), settings, UnsafeArchiveError, "compressed with deflate64")


PEAK_RSS_SCRIPT = """
import asyncio, resource, sys
from pathlib import Path
from core.config import Settings
from core.storage import store_upload

async def chunks(path):
    with open(path, "rb") as f:
        while chunk := f.read(64 * 1024):
            yield chunk

async def empty():
    yield b""

settings = Settings(data_dir=Path(sys.argv[2]))
try:  # warm up: the event loop, the worker thread and every import the refusal path takes
    asyncio.run(store_upload(empty(), family="causal-lm", settings=settings))
except Exception:
    pass
idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    asyncio.run(store_upload(chunks(sys.argv[1]), family="causal-lm", settings=settings))
    print("accepted")
except Exception as exc:
    print(type(exc).__name__, exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - idle) * 1024)
"""


@pytest.mark.parametrize("type_", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE], ids=["gnu-long-name", "pax"])
def test_a_hostile_archive_costs_the_process_under_50_mib(tmp_path, type_):
    """Today a 408 KB .tar.gz with a 400 MB long name cost the API +412 MiB before its 422."""
    import subprocess
    import sys
    archive = write_tar_gz_with_metadata(tmp_path / "meta.tar.gz", type_, 300 * 1024 * 1024)
    assert archive.stat().st_size < 1024 * 1024
    done = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, str(archive), str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    refusal, grown = done.stdout.strip().splitlines()
    assert refusal.startswith("UnsafeArchiveError") and "long-name or pax header" in refusal, done.stderr
    assert int(grown) < 50 * 1024 * 1024


# --- archives that unpack safely but are not an acceptable checkpoint --------------------------------------------

def test_pickle_weights_are_refused(model_files, settings):
    files = {**model_files, "pytorch_model.bin": b"\x80\x04\x95fake pickle"}
    assert_refused(tar_archive(files), settings, InvalidCheckpointError, "pickle")


def test_remote_code_config_is_refused(model_files, settings):
    config = json.loads(model_files["config.json"])
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    files = {**model_files, "config.json": json.dumps(config).encode()}
    assert_refused(tar_archive(files), settings, InvalidCheckpointError, "auto_map")


def test_missing_model_card_is_refused(model_files, settings):
    files = {k: v for k, v in model_files.items() if k != "README.md"}
    assert_refused(zip_archive(files), settings, InvalidCheckpointError, "model card")


def test_corrupt_safetensors_is_refused_as_invalid(model_files, settings):
    files = {**model_files, "model.safetensors": b"abc"}
    assert_refused(tar_archive(files), settings, InvalidCheckpointError, "model.safetensors")


def test_random_bytes_are_not_an_archive(settings):
    assert_refused(os.urandom(4096), settings, UnsafeArchiveError, "not a .tar, .tar.gz or .zip")


def test_truncated_archive_is_refused(model_files, settings):
    data = tar_archive(model_files)
    assert_refused(data[: len(data) // 2], settings, UnsafeArchiveError, "corrupt or truncated")


def test_empty_upload_is_refused(settings):
    assert_refused(b"", settings, UnsafeArchiveError, "empty")


# --- valid archives ----------------------------------------------------------------------------------------------

def assert_stored(result, data: bytes, fmt: str, settings: Settings, params: int, model_dir: str = "") -> None:
    sha = hashlib.sha256(data).hexdigest()
    assert (result.sha256, result.format, result.size_bytes) == (sha, fmt, len(data))
    assert result.path == store_root(settings) / sha / model_dir if model_dir else store_root(settings) / sha
    assert (result.path / "config.json").is_file() and (result.path / "model.safetensors").is_file()
    assert result.params == params
    assert [p.name for p in store_root(settings).iterdir()] == [sha]  # no temporaries left


def test_valid_tar_gz_is_stored_under_its_sha256(model_files, settings, real_param_count):
    data = tar_archive(model_files)
    result = store(data, settings)
    assert result.already_stored is False
    assert_stored(result, data, "tar.gz", settings, real_param_count)


def test_valid_plain_tar_is_stored(model_files, settings, real_param_count):
    data = tar_archive(model_files, mode="w")
    assert_stored(store(data, settings), data, "tar", settings, real_param_count)


def test_valid_zip_wrapped_in_a_top_folder_is_stored(model_files, settings, real_param_count):
    # zipfile.writestr gives members permission bits but no file type (0o600): still regular files.
    data = zip_archive({f"tiny/{name}": content for name, content in model_files.items()})
    result = store(data, settings)
    assert result.already_stored is False
    assert_stored(result, data, "zip", settings, real_param_count, model_dir="tiny")


def test_a_hidden_file_beside_the_model_folder_is_refused(model_files, settings):
    files = {**{f"tiny/{name}": content for name, content in model_files.items()}, ".evil.py": b"import os"}
    assert_refused(tar_archive(files), settings, InvalidCheckpointError, ".evil.py: nothing may sit beside")


def test_same_bytes_twice_are_stored_once(model_files, settings, real_param_count):
    data = tar_archive(model_files)
    first, second = store(data, settings), store(data, settings)
    assert (first.already_stored, second.already_stored) == (False, True)
    assert second.sha256 == first.sha256 and second.path == first.path and second.params == real_param_count
    assert_stored(second, data, "tar.gz", settings, real_param_count)


# --- safetensors header ------------------------------------------------------------------------------------------

def fake_safetensors(path: Path, header: dict, data: int | None = None) -> Path:
    """A safetensors file from its header; `data` bytes of zeros after it (default: exactly what it declares)."""
    raw = json.dumps(header).encode()
    if data is None:
        data = max((m["data_offsets"][1] for k, m in header.items() if k != "__metadata__"), default=0)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(data))
    return path


def test_param_count_sums_every_tensor_and_ignores_metadata(tmp_path):
    path = fake_safetensors(tmp_path / "two.safetensors", {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
        "b": {"dtype": "F32", "shape": [5], "data_offsets": [48, 68]},
        "scalar": {"dtype": "F32", "shape": [], "data_offsets": [68, 72]},
    })
    assert safetensors_param_count(path) == 12 + 5 + 1


def test_the_issues_8_byte_file_claiming_28_billion_parameters_is_refused(tmp_path):
    """Today's hole: a header declaring a 2³¹×13 tensor over 8 data bytes counted as 28B parameters."""
    path = fake_safetensors(tmp_path / "huge.safetensors", {
        "embed": {"dtype": "F32", "shape": [2**31, 13], "data_offsets": [0, 8]}}, data=8)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidCheckpointError, match="huge.safetensors.*F32 \\[2147483648, 13\\]"):
            safetensors_param_count(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # refused from the header: nothing the size of the claim is allocated


@pytest.mark.parametrize("header, data, reason", [
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 8, "outside the file's 8 data bytes"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 20, "cover 16 of the file's 20 data bytes"),
    ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
      "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, 24, "overlaps"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}, 20, "gap of 4 bytes"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 8, "overlaps"),
    ({"w": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, 8, "unknown dtype"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}}, 8, "exactly dtype, shape"),
    ([1, 2], 0, "not a JSON object"),
    ({"w": {"dtype": "F32", "shape": [10**12, "x"], "data_offsets": [0, 8]}}, 8, "no valid shape"),
    ({"w": {"dtype": "F32", "shape": [-1, 5], "data_offsets": [0, 8]}}, 8, "no valid shape"),
], ids=["past-the-end", "trailing-bytes", "overlap", "gap", "shared-span", "dtype", "extra-key", "list", "str-dim",
        "negative-dim"])
def test_a_header_that_does_not_tile_its_file_is_refused(tmp_path, header, data, reason):
    with pytest.raises(InvalidCheckpointError, match="bad.safetensors") as refused:
        safetensors_param_count(fake_safetensors(tmp_path / "bad.safetensors", header, data))
    assert reason in str(refused.value)


def test_param_count_refuses_a_file_too_short_for_a_header(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"abc")
    with pytest.raises(InvalidCheckpointError, match="short.safetensors"):
        safetensors_param_count(path)


def test_a_header_over_16_mib_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", 17 * 1024 * 1024) + b"{}")
    with pytest.raises(InvalidCheckpointError, match="16,777,216 are accepted"):
        safetensors_param_count(path)


def test_a_header_nested_100k_deep_is_refused_not_a_recursion_error(tmp_path):
    raw = b'{"w": ' + deep_json() + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(InvalidCheckpointError, match="deep.safetensors: JSON nested"):
        safetensors_param_count(path)


def test_a_stray_weights_file_not_in_an_index_is_refused(model_files, settings):
    files = {**model_files, "extra.safetensors": model_files["model.safetensors"]}
    assert_refused(tar_archive(files), settings, InvalidCheckpointError, "extra.safetensors")


def _sharded(model_files: dict[str, bytes], tmp_path: Path) -> dict[str, bytes]:
    """The tiny model saved in two shards with its index, as transformers writes big models."""
    from safetensors.numpy import load, save
    tensors = load(model_files["model.safetensors"])
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:5], "model-00002-of-00002.safetensors": names[5:]}
    files = {k: v for k, v in model_files.items() if k != "model.safetensors"}
    for shard, keys in shards.items():
        files[shard] = save({k: tensors[k] for k in keys}, metadata={"format": "pt"})
    files["model.safetensors.index.json"] = json.dumps(
        {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}).encode()
    return files


def test_sharded_weights_with_their_index_are_counted_once(model_files, settings, real_param_count, tmp_path):
    assert store(tar_archive(_sharded(model_files, tmp_path)), settings).params == real_param_count


def test_a_shard_missing_from_the_index_is_refused(model_files, settings, tmp_path):
    files = _sharded(model_files, tmp_path)
    files["model-00003-of-00002.safetensors"] = files["model-00002-of-00002.safetensors"]
    assert_refused(tar_archive(files), settings, InvalidCheckpointError,
                   "model-00003-of-00002.safetensors: not listed in model.safetensors.index.json")


def test_weights_padded_with_extra_tensors_disagree_with_the_config(model_files, settings, real_param_count):
    """Real bytes, tiled exactly, but 10x what the config's model holds: not the model's own count."""
    import numpy as np
    from safetensors.numpy import load, save
    tensors = load(model_files["model.safetensors"])
    tensors["padding"] = np.zeros(10 * real_param_count, dtype=np.float32)
    files = {**model_files, "model.safetensors": save(tensors)}
    assert_refused(tar_archive(files), settings, InvalidCheckpointError, "the weights must be the configured model")


# --- what the config claims ---------------------------------------------------------------------------------------

def _with_config(model_files: dict[str, bytes], **changes) -> dict[str, bytes]:
    config = json.loads(model_files["config.json"])
    config.update(changes)
    return {**model_files, "config.json": json.dumps(config).encode()}


def test_a_config_claiming_a_trillion_parameters_is_refused_before_loading(model_files, settings):
    data = tar_archive(_with_config(model_files, n_embd=100_000, n_layer=100, vocab_size=1_000_000))
    assert_refused(data, settings, InvalidCheckpointError, "over this service's cap")


def test_a_config_claiming_more_layers_than_the_weights_hold_is_refused(model_files, settings):
    """Missing layers would be initialised at load: the model run would not be the one whose count is shown."""
    data = tar_archive(_with_config(model_files, n_layer=24))
    assert_refused(data, settings, InvalidCheckpointError, "the weights must be the configured model's own")


def test_a_config_nested_100k_deep_is_refused_not_a_recursion_error(model_files, settings):
    data = tar_archive({**model_files, "config.json": deep_json()})
    assert_refused(data, settings, InvalidCheckpointError, "config.json: JSON nested 100000 levels deep")


@pytest.mark.parametrize("changes, reason", [
    ({"model_type": "no-such-arch"}, "not supported by the installed transformers"),
    ({"architectures": ["GPT2ForSequenceClassification"]}, "not a causal language model"),
    ({"architectures": ["GPT2InventedLMHeadModel"]}, "not in transformers' gpt2 models"),
    ({"model_type": None}, "no model_type"),
])
def test_an_unsupported_architecture_is_refused(model_files, settings, changes, reason):
    assert_refused(tar_archive(_with_config(model_files, **changes)), settings, InvalidCheckpointError, reason)


def test_a_checkpoint_without_a_license_is_refused(model_files, settings):
    files = {k: v for k, v in model_files.items() if k != "LICENSE"}
    assert_refused(tar_archive(files), settings, InvalidCheckpointError, "a license is required")


def test_a_license_in_the_model_card_front_matter_is_enough(model_files, settings):
    files = {k: v for k, v in model_files.items() if k != "LICENSE"}
    files["README.md"] = b"---\nlicense: apache-2.0\n---\n# A model\n\nWith a card.\n"
    assert store(tar_archive(files), settings).params > 0


def _clip_files(model_cfg: dict) -> dict[str, bytes]:
    import numpy as np
    from safetensors.numpy import save

    # A one-number weights file: what the count must come from here is the config.
    return {"open_clip_config.json": json.dumps({"model_cfg": model_cfg}).encode(),
            "open_clip_model.safetensors": save({"logit_scale": np.zeros(1, dtype=np.float32)}),
            "README.md": b"# A CLIP\n\nA tiny CLIP for tests.\n", "LICENSE": b"MIT\n"}


def test_a_clip_config_claiming_billions_of_parameters_is_refused_before_loading(settings):
    from evaluators.demo_models.clip import TINY_CONFIG

    huge = {**TINY_CONFIG, "vision_cfg": {**TINY_CONFIG["vision_cfg"], "width": 16384, "layers": 64}}
    with pytest.raises(InvalidCheckpointError, match="over this service's cap"):
        store(tar_archive(_clip_files(huge)), settings, family="clip")


def test_a_clip_whose_weights_are_not_its_configs_model_is_refused(settings):
    """One number of weights beside a config of 3.3M parameters: the count shown would not be the model's."""
    from evaluators.demo_models.clip import TINY_CONFIG

    with pytest.raises(InvalidCheckpointError, match="the weights hold 1 parameters but open_clip_config.json"):
        store(tar_archive(_clip_files(TINY_CONFIG)), settings, family="clip")


def test_the_tiny_clip_is_stored_with_its_weights_count(settings, tmp_path):
    from evaluators.demo_models.clip import build_clip

    folder = build_clip(tmp_path / "tiny-clip")
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    from safetensors.numpy import load
    expected = sum(t.size for t in load(files["open_clip_model.safetensors"]).values())
    assert store(tar_archive(files), settings, family="clip").params == expected
