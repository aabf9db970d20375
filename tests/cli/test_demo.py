"""The demo models make a real, ordered board: more training ranks higher."""
from cli.demo import DEMO_CAUSAL_LMS, build_demo_models, score_in_process


def test_demo_models_rank_by_training_on_cognition_and_overall(demo_models_dir):
    scores = score_in_process(build_demo_models(demo_models_dir))  # built once per session, reused here
    assert list(scores) == list(DEMO_CAUSAL_LMS)  # untrained, brief, longer
    untrained, brief, longer = scores.values()
    # With a margin, so the order is the models' and not the noise of a 200-item set.
    for measure in (lambda s: s["capabilities"]["cognition"], lambda s: s["overall"]):
        assert measure(untrained) + 0.03 < measure(brief), scores
        assert measure(brief) + 0.03 < measure(longer), scores
