"""A CLIP's parameter count from its config equals the built model's, for every plain open_clip config."""
import pytest
import torch
from open_clip.factory import _MODEL_CONFIGS

from core.clip_params import estimate_clip_params
from evaluators.loaders.open_clip import _build
from evaluators.demo_models.clip import TINY_CONFIG

PLAIN = sorted(name for name, cfg in _MODEL_CONFIGS.items() if estimate_clip_params(cfg) is not None)


def _built(cfg: dict) -> int:
    with torch.device("meta"):  # shapes only: nothing allocated
        return sum(p.numel() for p in _build(cfg, "float32").parameters())


def test_the_demo_clip_config_counts_exactly():
    assert estimate_clip_params(TINY_CONFIG) == _built(TINY_CONFIG)


@pytest.mark.parametrize("name", PLAIN)
def test_plain_open_clip_configs_count_exactly(name):
    assert estimate_clip_params(_MODEL_CONFIGS[name]) == _built(_MODEL_CONFIGS[name])


def test_the_common_vit_configs_are_covered():
    assert {"ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-H-14"} <= set(PLAIN)


@pytest.mark.parametrize("name", ["RN50", "ViT-B-16-SigLIP", "convnext_base", "xlm-roberta-base-ViT-B-32", "coca_ViT-B-32"])
def test_other_towers_are_not_guessed(name):
    assert estimate_clip_params(_MODEL_CONFIGS[name]) is None
