"""The loaders refuse a hostile folder that reached the store without the upload check, and run none of its code.

Each folder is written straight into the artifact store, as a bug or an operator's copy might put it
there; each hostile one ships (or names) a .py that would leave a marker file if it were imported.
"""
import json
from pathlib import Path

import pytest

from core.config import get_settings
from core.errors import UnsafeCheckpointError
from evaluators import loaders
from tests.archives import clip_tokenizer_kwargs_attack, hostile_causal_lm_cases, hostile_clip_cases


def into_store(files: dict[str, bytes], name: str) -> Path:
    """Write a checkpoint folder directly under the store's checkpoints/, bypassing upload and its checks."""
    folder = get_settings().artifact_dir / "checkpoints" / name
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory) -> dict[str, bytes]:
    from evaluators.demo_models.clip import build_clip
    folder = build_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran"


def assert_refused_without_running_code(family: str, folder: Path, marker: Path, reason: str) -> None:
    with pytest.raises(UnsafeCheckpointError) as refused:
        loaders.load(family, folder)
    assert reason in str(refused.value)
    assert isinstance(refused.value, ValueError)  # a worker classes it as the author's error, not retried
    assert not marker.exists()


def test_the_issues_clip_tokenizer_kwargs_attack_runs_no_code(clip_files, marker, tmp_path):
    """tokenizer_kwargs {"trust_remote_code": true}, hf_tokenizer_name, tokenizer.json, config.json with auto_map, a .py."""
    folder = into_store(clip_tokenizer_kwargs_attack(clip_files, str(marker)), f"attack-{tmp_path.name}")
    assert_refused_without_running_code("clip", folder, marker, "tokenization_evil.py")


@pytest.mark.parametrize("case", sorted(hostile_causal_lm_cases("m")))
def test_hostile_causal_lm_folders_are_refused_by_the_loader(model_files, marker, tmp_path, case):
    spoil, reason = hostile_causal_lm_cases(str(marker))[case]
    folder = into_store(spoil(model_files), f"lm-{tmp_path.name}")
    assert_refused_without_running_code("causal-lm", folder, marker, reason)


@pytest.mark.parametrize("case", sorted(hostile_clip_cases("m")))
def test_hostile_clip_folders_are_refused_by_the_loader(clip_files, marker, tmp_path, case):
    spoil, reason = hostile_clip_cases(str(marker))[case]
    folder = into_store(spoil(clip_files), f"clip-{tmp_path.name}")
    assert_refused_without_running_code("clip", folder, marker, reason)


def test_a_clip_with_its_own_hugging_face_tokenizer_loads_it_from_the_folder(clip_files, tmp_path):
    """hf_tokenizer_name with the tokenizer's files shipped: read from the folder, offline, with allowed options."""
    from open_clip.tokenizer import HFTokenizer

    from evaluators.demo_models.causal_lm import build_tokenizer

    folder = into_store(clip_files, f"hf-tok-{tmp_path.name}")
    build_tokenizer(["a red circle", "two blue squares", "a green triangle"] * 20, vocab_size=300).save_pretrained(folder)
    raw = json.loads((folder / "open_clip_config.json").read_text())
    raw["model_cfg"]["text_cfg"].update(hf_tokenizer_name="someone/not-on-any-hub",
                                        tokenizer_kwargs={"clean": "whitespace", "strip_sep_token": False})
    (folder / "open_clip_config.json").write_text(json.dumps(raw))
    loaded = loaders.load("clip", folder)
    assert isinstance(loaded.tokenizer, HFTokenizer)
    tokens = loaded.tokenizer(["a red circle"])
    assert tokens.shape == (1, raw["model_cfg"]["text_cfg"]["context_length"]) and tokens.sum() > 0


def test_a_built_in_attention_implementation_in_the_config_is_used(model_files, tmp_path):
    config = {**json.loads(model_files["config.json"]), "attn_implementation": "eager"}
    folder = into_store({**model_files, "config.json": json.dumps(config).encode()}, f"eager-{tmp_path.name}")
    assert loaders.load("causal-lm", folder).model.config._attn_implementation == "eager"
