"""Tiny CLIP checkpoints shared by the multimodal tests, built once per session."""
import pytest

from tests.conftest import DATA_DIR


@pytest.fixture(scope="session")
def tiny_clip_dir():
    """Untrained: the cheapest valid checkpoint, for the service path."""
    from evaluators.multimodal.tiny_clip import build_clip
    return build_clip(DATA_DIR / "models" / "tiny-clip-untrained", train_steps=0, seed=0)


@pytest.fixture(scope="session")
def briefly_trained_clip_dir():
    """A few steps of training, so scores are off chance and equality with a reference means something."""
    from evaluators.multimodal.tiny_clip import build_clip
    return build_clip(DATA_DIR / "models" / "tiny-clip-30", train_steps=30, seed=0)
