"""Tiny CLIP checkpoints shared by the multimodal tests, built once per session."""
import pytest

from tests.conftest import DATA_DIR


@pytest.fixture(scope="session")
def tiny_clip_dir():
    """Untrained: the cheapest valid checkpoint, for the service path."""
    from evaluators.demo_models.clip import build_clip
    return build_clip(DATA_DIR / "models" / "tiny-clip-untrained", train_steps=0, seed=0)


@pytest.fixture(scope="session")
def briefly_trained_clip_dir():
    """A few steps of training, so scores are off chance and equality with a reference means something."""
    from evaluators.demo_models.clip import build_clip
    return build_clip(DATA_DIR / "models" / "tiny-clip-30", train_steps=30, seed=0)


@pytest.fixture(scope="module")
def reference(briefly_trained_clip_dir):
    """The independent scorer (tests/evaluators/multimodal/reference.py) on the briefly trained CLIP."""
    from tests.evaluators.multimodal.reference import Reference
    return Reference(briefly_trained_clip_dir)


@pytest.fixture(scope="module")
def loaded(briefly_trained_clip_dir):
    """The briefly trained CLIP as a worker loads it."""
    from evaluators.loaders import load
    return load("clip", briefly_trained_clip_dir)
