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
from tests.archives import tar_archive, zip_archive

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


def test_same_bytes_twice_are_stored_once(model_files, settings, real_param_count):
    data = tar_archive(model_files)
    first, second = store(data, settings), store(data, settings)
    assert (first.already_stored, second.already_stored) == (False, True)
    assert second.sha256 == first.sha256 and second.path == first.path and second.params == real_param_count
    assert_stored(second, data, "tar.gz", settings, real_param_count)


# --- safetensors header ------------------------------------------------------------------------------------------

def fake_safetensors(path: Path, header: dict) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


def test_param_count_of_a_huge_header_is_read_without_allocating(tmp_path):
    path = fake_safetensors(tmp_path / "huge.safetensors", {
        "__metadata__": {"format": "pt"},
        "embed": {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 4 * 10**12]},
    })
    tracemalloc.start()
    try:
        count = safetensors_param_count(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10**12
    assert peak < 1024 * 1024  # a 4 TB tensor is counted, not built


def test_param_count_sums_every_tensor_and_ignores_metadata(tmp_path):
    path = fake_safetensors(tmp_path / "two.safetensors", {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
        "b": {"dtype": "F32", "shape": [5], "data_offsets": [48, 68]},
        "scalar": {"dtype": "F32", "shape": [], "data_offsets": [68, 72]},
    })
    assert safetensors_param_count(path) == 12 + 5 + 1


@pytest.mark.parametrize("header", [[1, 2], {"w": {"dtype": "F32"}}, {"w": {"shape": [10**12, "x"]}},
                                    {"w": {"shape": [-1, 5]}}], ids=["list", "no-shape", "str-dim", "negative-dim"])
def test_param_count_refuses_a_malformed_header(tmp_path, header):
    with pytest.raises(InvalidCheckpointError, match="bad.safetensors"):
        safetensors_param_count(fake_safetensors(tmp_path / "bad.safetensors", header))


def test_param_count_refuses_a_file_too_short_for_a_header(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"abc")
    with pytest.raises(InvalidCheckpointError, match="short.safetensors"):
        safetensors_param_count(path)


# --- what the config claims ---------------------------------------------------------------------------------------

def _with_config(model_files: dict[str, bytes], **changes) -> dict[str, bytes]:
    config = json.loads(model_files["config.json"])
    config.update(changes)
    return {**model_files, "config.json": json.dumps(config).encode()}


def test_a_config_claiming_a_trillion_parameters_is_refused_before_loading(model_files, settings):
    data = tar_archive(_with_config(model_files, n_embd=100_000, n_layer=100, vocab_size=1_000_000))
    assert_refused(data, settings, InvalidCheckpointError, "over this service's cap")


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
    from evaluators.multimodal.tiny_clip import TINY_CONFIG

    assert store(tar_archive(_clip_files(TINY_CONFIG)), settings, family="clip").params > 1_000_000
    huge = {**TINY_CONFIG, "vision_cfg": {**TINY_CONFIG["vision_cfg"], "width": 16384, "layers": 64}}
    with pytest.raises(InvalidCheckpointError, match="over this service's cap"):
        store(tar_archive(_clip_files(huge)), settings, family="clip")
