"""The tiny CLIP demo models rank untrained < briefly trained on clip-core."""
from evaluators.demo_models.clip import DEMO_CLIPS, build_demo_clip_models
from runners.in_process import score_in_process


def test_demo_clip_models_rank_by_training(demo_models_dir):
    scores = score_in_process(build_demo_clip_models(demo_models_dir), "clip-core", "clip")  # built once per session
    assert list(scores) == list(DEMO_CLIPS)
    untrained, brief = scores.values()
    # With a margin, so the order is the models' and not the noise of a 240-item set.
    assert untrained["overall"] + 0.05 < brief["overall"], scores
    for lang in ("en", "zh", "de"):
        assert untrained["normalised"][f"shapes_retrieval_{lang}"] + 0.1 < brief["normalised"][f"shapes_retrieval_{lang}"]
