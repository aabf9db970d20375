"""`hf-hub:org/repo` and `open_clip:<arch>/<tag>` load from a Hugging Face hub cache, offline.

The cache is written here in huggingface_hub's real layout (models--org--repo/refs/main,
snapshots/<commit>/ links into blobs/), and read with HF_HUB_OFFLINE=1, so nothing is fetched.
A real open_clip tag's weights are not fabricated: the smallest hub-hosted arch is ~62M parameters
(a 125 MB file even in fp16); the `open_clip:` branch runs against a tiny arch and tag registered
in open_clip's own registries for the test, and its hf_hub parsing against every real tag.
"""
import hashlib
import os
from pathlib import Path

import huggingface_hub.constants
import open_clip
import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from open_clip.pretrained import _PRETRAINED, _pcfg
from PIL import Image

from evaluators.loaders.open_clip import (
    hub_weights_file,
    load_clip_by_name,
    load_clip_folder,
)
from evaluators.demo_models.clip import TINY_CONFIG, TINY_PREPROCESS


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def cache_repo(cache_dir: Path, repo_id: str, files: dict[str, bytes], commit: str = "a" * 40) -> Path:
    """Write a model repo into a hub cache as huggingface_hub leaves it after a download; its snapshot."""
    repo = cache_dir / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for name, content in files.items():
        # Blobs are named by etag: sha256 for LFS files (weights), the git blob sha1 for the others.
        etag = (hashlib.sha256(content).hexdigest() if name.endswith(".safetensors")
                else hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest())
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        (repo / "blobs" / etag).write_bytes(content)
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).symlink_to(os.path.relpath(repo / "blobs" / etag, (snapshot / name).parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _same_model(a, b):
    images = [Image.new("RGB", (40, 30), (200, 30, 30)), Image.new("RGB", (32, 32), (10, 120, 240))]
    pixels_a = torch.stack([a.preprocess(im) for im in images])
    assert torch.equal(pixels_a, torch.stack([b.preprocess(im) for im in images]))
    texts = ["three red circles", "一只猫", "ein Hund"]
    assert torch.equal(a.tokenizer(texts), b.tokenizer(texts))
    with torch.no_grad():
        assert torch.equal(a.model.encode_image(pixels_a), b.model.encode_image(pixels_a))
        assert torch.equal(a.model.encode_text(a.tokenizer(texts)), b.model.encode_text(b.tokenizer(texts)))
    assert a.model.state_dict().keys() == b.model.state_dict().keys()
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())


def test_hf_hub_name_loads_the_cached_repo(tmp_path, briefly_trained_clip_dir):
    files = {p.name: p.read_bytes() for p in briefly_trained_clip_dir.iterdir()}
    # A transformers-format copy, as many CLIP repos carry: not open_clip's, so never read.
    files["model.safetensors"] = b"not open_clip weights"
    cache_repo(tmp_path / "hub", "evalboard-test/tiny-clip", files)
    before = _tree(tmp_path / "hub")

    loaded = load_clip_by_name("hf-hub:evalboard-test/tiny-clip", cache_dir=str(tmp_path / "hub"))
    _same_model(loaded, load_clip_folder(briefly_trained_clip_dir))
    assert Path(loaded.path).parent.name == "snapshots" and loaded.config == TINY_CONFIG
    assert _tree(tmp_path / "hub") == before  # read in place, nothing written into the cache


def test_hf_hub_name_pinned_to_a_commit_loads_that_snapshot(tmp_path, briefly_trained_clip_dir):
    # A submission pins hf-hub:org/repo@<commit> (core/hub.py); the worker must load exactly that commit.
    files = {p.name: p.read_bytes() for p in briefly_trained_clip_dir.iterdir()}
    pinned = cache_repo(tmp_path / "hub", "evalboard-test/tiny-clip", files, commit="b" * 40)
    (tmp_path / "hub" / "models--evalboard-test--tiny-clip" / "refs" / "main").write_text("c" * 40)  # main moved on
    loaded = load_clip_by_name(f"hf-hub:evalboard-test/tiny-clip@{'b' * 40}", cache_dir=str(tmp_path / "hub"))
    assert Path(loaded.path) == pinned
    _same_model(loaded, load_clip_folder(briefly_trained_clip_dir))


def test_hf_hub_name_not_in_the_cache_fails_offline(tmp_path):
    with pytest.raises(LocalEntryNotFoundError):
        load_clip_by_name("hf-hub:evalboard-test/absent", cache_dir=str(tmp_path / "hub"))


@pytest.fixture
def tiny_arch(monkeypatch):
    """A tiny arch in open_clip's config registry and three tags for it in its pretrained registry."""
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "EvalboardTiny", TINY_CONFIG)
    pp = {k: tuple(v) if isinstance(v, list) else v for k, v in TINY_PREPROCESS.items()}
    monkeypatch.setitem(_PRETRAINED, "EvalboardTiny", {
        "default": _pcfg(hf_hub="evalboard-test/tiny-clip-default/", **pp),  # open_clip's default file name
        "named": _pcfg(hf_hub="evalboard-test/tiny-clip-named/weights.bin", **pp),  # a named pickle → its twin
        "pickle": _pcfg(hf_hub="evalboard-test/tiny-clip-pickle/", **pp),  # only the pickle is there
    })


def test_open_clip_tag_loads_its_safetensors_from_the_cache(tmp_path, tiny_arch, briefly_trained_clip_dir):
    weights = (briefly_trained_clip_dir / "open_clip_model.safetensors").read_bytes()
    # Pretrained-tag repos need no config: the arch's comes from open_clip, the preprocessing from the tag.
    cache_repo(tmp_path / "hub", "evalboard-test/tiny-clip-default",
               {"open_clip_model.safetensors": weights, "open_clip_pytorch_model.bin": b"pickle"})
    cache_repo(tmp_path / "hub", "evalboard-test/tiny-clip-named", {"weights.safetensors": weights})
    before = _tree(tmp_path / "hub")
    reference = load_clip_folder(briefly_trained_clip_dir)
    for tag in ("default", "named"):
        loaded = load_clip_by_name(f"open_clip:EvalboardTiny/{tag}", cache_dir=str(tmp_path / "hub"))
        _same_model(loaded, reference)
    # The old code wrote open_clip_config.json into the snapshot: through a link, into a shared blob.
    assert _tree(tmp_path / "hub") == before


def test_open_clip_tag_with_only_pickled_weights_is_never_unpickled(tmp_path, tiny_arch, monkeypatch):
    cache_repo(tmp_path / "hub", "evalboard-test/tiny-clip-pickle", {"open_clip_pytorch_model.bin": b"pickle"})
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    with pytest.raises(LocalEntryNotFoundError):  # offline; connected, the hub's 404 becomes a ValueError
        load_clip_by_name("open_clip:EvalboardTiny/pickle", cache_dir=str(tmp_path / "hub"))


@pytest.mark.parametrize("name", ["open_clip:EvalboardTiny/absent", "open_clip:NoSuchArch/openai",
                                  "open_clip:hf-hub:org/repo", "gs://bucket/model"])
def test_unknown_references_are_refused(name, tiny_arch):
    with pytest.raises(ValueError, match="no hub-hosted pretrained tag|unknown clip model reference"):
        load_clip_by_name(name)


def test_every_real_open_clip_tag_maps_to_a_hub_safetensors_file():
    seen = {}
    for arch, tags in _PRETRAINED.items():
        for tag, cfg in tags.items():
            if cfg.get("hf_hub"):
                repo, filename = hub_weights_file(cfg["hf_hub"])
                assert repo.count("/") == 1 and filename.endswith(".safetensors"), (arch, tag, repo, filename)
                seen[(arch, tag)] = (repo, filename)
    assert seen[("ViT-B-32", "laion2b_s34b_b79k")] == ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
                                                      "open_clip_model.safetensors")
    assert seen[("ViT-B-32", "openai")] == ("timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors")
    # Named files: the old code took the whole entry for the repo id ("jienengchen/ViTamin-S/pytorch_model.bin").
    assert seen[("ViTamin-S", "datacomp1b")] == ("jienengchen/ViTamin-S", "pytorch_model.safetensors")
