"""core.checkpoint_policy on folders written here: what may reach a loader, and what is refused, naming why."""
import dataclasses
import inspect
import json
import os
from pathlib import Path

import open_clip
import pytest
from open_clip.coca_model import MultimodalCfg
from open_clip.factory import _MODEL_CONFIGS
from open_clip.model import CLIPTextCfg, CLIPVisionCfg
from open_clip.transform import PreprocessCfg

from core import checkpoint_policy as policy
from core.errors import UnsafeCheckpointError
from tests.archives import deep_json, hostile_causal_lm_cases, hostile_clip_cases


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory) -> dict[str, bytes]:
    from evaluators.demo_models.clip import build_clip
    folder = build_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# --- the real checkpoints pass ---------------------------------------------------------------------------------

def test_the_tiny_causal_lm_folder_passes(tiny_lm_dir):
    parsed = policy.check_folder(tiny_lm_dir, "causal-lm")
    assert parsed["config.json"]["model_type"] == "gpt2"


def test_the_tiny_clip_folder_passes(tmp_path, clip_files):
    assert "open_clip_config.json" in policy.check_folder(write(tmp_path, clip_files), "clip")


@pytest.mark.parametrize("name", sorted(_MODEL_CONFIGS))
def test_every_config_open_clip_ships_passes_the_field_check(name):
    """The allow-list is open_clip's own fields: none of its bundled configs is refused."""
    policy.check_clip_model_cfg(_MODEL_CONFIGS[name], name)


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_the_allow_lists_are_open_clips_fields():
    """If open_clip adds a field, this fails, and the field is added here once its type is known."""
    assert set(policy.VISION_CFG) == _fields(CLIPVisionCfg)
    assert set(policy.TEXT_CFG) == _fields(CLIPTextCfg)
    assert set(policy.MULTIMODAL_CFG) == _fields(MultimodalCfg)
    assert set(policy.PREPROCESS_CFG) == _fields(PreprocessCfg)
    constructor = set(inspect.signature(open_clip.CLIP.__init__).parameters) | {"custom_text", "multimodal_cfg"}
    assert set(policy.MODEL_CFG) <= constructor - {"self", "cast_dtype", "output_dict"}


# --- hostile folders ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(hostile_causal_lm_cases("m")))
def test_hostile_causal_lm_folders_are_refused_naming_why(tmp_path, model_files, case):
    spoil, reason = hostile_causal_lm_cases(str(tmp_path / "marker"))[case]
    with pytest.raises(UnsafeCheckpointError) as refused:
        policy.check_folder(write(tmp_path / "model", spoil(model_files)), "causal-lm")
    assert reason in str(refused.value)


@pytest.mark.parametrize("case", sorted(hostile_clip_cases("m")))
def test_hostile_clip_folders_are_refused_naming_why(tmp_path, clip_files, case):
    spoil, reason = hostile_clip_cases(str(tmp_path / "marker"))[case]
    with pytest.raises(UnsafeCheckpointError) as refused:
        policy.check_folder(write(tmp_path / "model", spoil(clip_files)), "clip")
    assert reason in str(refused.value)


def test_flash_attention_is_refused_where_its_package_is_not_installed(tmp_path, model_files):
    config = {**json.loads(model_files["config.json"]), "attn_implementation": "flash_attention_2"}
    folder = write(tmp_path, {**model_files, "config.json": json.dumps(config).encode()})
    if "flash_attention_2" in policy.attention_implementations():
        pytest.skip("flash_attn is installed here")
    with pytest.raises(UnsafeCheckpointError, match="flash_attention_2"):
        policy.check_folder(folder, "causal-lm")


@pytest.mark.parametrize("value", ["eager", "sdpa", None, {"": "sdpa", "text_config": "eager"}])
def test_built_in_attention_and_false_trust_remote_code_pass(tmp_path, model_files, value):
    config = {**json.loads(model_files["config.json"]), "attn_implementation": value, "trust_remote_code": False}
    policy.check_folder(write(tmp_path, {**model_files, "config.json": json.dumps(config).encode()}), "causal-lm")


def test_a_link_is_refused_even_to_an_allowed_name(tmp_path, model_files):
    folder = write(tmp_path / "model", model_files)
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer.json").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeCheckpointError, match="is a link"):
        policy.check_folder(folder, "causal-lm")


def test_a_hub_snapshot_may_link_into_its_own_blobs_only(tmp_path, model_files):
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "c0ffee"
    write(blobs, {f"blob-{i}": content for i, content in enumerate(model_files.values())})
    snapshot.mkdir(parents=True)
    for i, name in enumerate(model_files):
        (snapshot / name).symlink_to(os.path.relpath(blobs / f"blob-{i}", snapshot))
    policy.check_folder(snapshot, "causal-lm", links_into=blobs)
    (snapshot / "vocab.json").symlink_to("/etc/hostname")
    with pytest.raises(UnsafeCheckpointError, match="'vocab.json' is a link"):
        policy.check_folder(snapshot, "causal-lm", links_into=blobs)


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json", "generation_config.json"])
def test_json_nested_100k_deep_is_refused_before_parsing(tmp_path, model_files, name):
    folder = write(tmp_path, {**model_files, name: deep_json()})
    with pytest.raises(UnsafeCheckpointError, match=f"{name}: JSON nested 100000 levels deep"):
        policy.check_folder(folder, "causal-lm")


def test_depth_is_counted_outside_strings_only():
    assert policy.json_depth(b'{"a": "[[[[{{{{\\"[[[", "b": [[1]]}') == 3
    assert policy.loads_bounded(b'{"a": "' + b"[" * 1000 + b'"}', "x.json") == {"a": "[" * 1000}


@pytest.mark.parametrize("name, allowed", [
    ("config.json", True), ("model-00001-of-00002.safetensors", True), ("LICENSE-MIT", True), ("LICENSE.md", True),
    ("additional_chat_templates/tool.jinja", True), ("LICENSE.py", False), ("modeling_x.py", False),
    ("model.safetensors/x", False), ("preprocessor_config.json", False), ("x.so", False), ("extra/config.json", False),
])
def test_causal_lm_file_allow_list(name, allowed):
    assert policy.allowed_file("causal-lm", name) is allowed
