"""A tiny CLIP for the efficiency tests, built once per session (the multimodal tests' fixture is
scoped to their folder)."""
import pytest

from tests.conftest import DATA_DIR


@pytest.fixture(scope="session")
def tiny_clip_dir():
    from evaluators.demo_models.clip import build_clip
    return build_clip(DATA_DIR / "models" / "tiny-clip-efficiency", train_steps=0, seed=0)
