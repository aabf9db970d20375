"""The demo models make a real, ordered board (more training ranks higher), submitted in the order
that shows a newcomer a ranked row soonest."""
from cli.demo import (DEMO_CAUSAL_LMS, DEMO_MEASURED, build_demo_models, iter_demo_models, score_in_process,
                      submit_demo_models)
from evaluators.demo_models.clip import DEMO_CLIPS


def test_demo_models_rank_by_training_on_cognition_and_overall(demo_models_dir):
    scores = score_in_process(build_demo_models(demo_models_dir))  # built once per session, reused here
    assert list(scores) == list(DEMO_CAUSAL_LMS)  # untrained, brief, longer
    untrained, brief, longer = scores.values()
    # With a margin, so the order is the models' and not the noise of a 200-item set.
    for measure in (lambda s: s["capabilities"]["cognition"], lambda s: s["overall"]):
        assert measure(untrained) + 0.03 < measure(brief), scores
        assert measure(brief) + 0.03 < measure(longer), scores


class RecordingClient:
    """Stands in for the API client: records what the demo uploads and submits, in order."""

    def __init__(self):
        self.calls = []

    def upload_checkpoint(self, folder, family):
        self.calls.append(("upload", folder.name, family))
        return {"sha256": f"sha-of-{folder.name}"}

    def submit(self, *, model_name, checkpoint_sha256, suite, license):
        assert checkpoint_sha256 == f"sha-of-{model_name}" and license == "Apache-2.0"
        self.calls.append(("submit", model_name, suite))
        return {"id": f"{model_name}/{suite}"}


def test_demo_submits_untrained_models_first_then_trained_then_efficiency(demo_models_dir):
    client = RecordingClient()
    ids = submit_demo_models(client, demo_models_dir)  # all built already: only the order is tested
    submits = [(name, suite) for kind, name, suite in client.calls if kind == "submit"]
    assert ids == [f"{name}/{suite}" for name, suite in submits]
    # Both untrained models first: built in a second, their rows rank while the others still train.
    assert submits[:2] == [("tiny-gpt2-untrained", "language-core"), ("tiny-clip-untrained", "clip-core")]
    count = len(DEMO_CAUSAL_LMS) + len(DEMO_CLIPS)
    quality, efficiency = submits[:count], submits[count:]
    assert sorted(quality) == sorted([(n, "language-core") for n in DEMO_CAUSAL_LMS] +
                                     [(n, "clip-core") for n in DEMO_CLIPS])
    # Efficiency last, one model per family (its architecture), so the Efficiency page has points.
    assert efficiency == [("tiny-gpt2-longer", "efficiency-cpu"), ("tiny-clip-brief", "efficiency-clip-cpu")]
    assert set(DEMO_MEASURED) == {name for name, _ in efficiency}
    # Each model is submitted right after its upload, before the next is built (or uploaded).
    kinds = [kind for kind, *_ in client.calls]
    assert kinds[:2 * len(quality)] == ["upload", "submit"] * len(quality)
    assert submit_demo_models(RecordingClient(), demo_models_dir, efficiency=False) == ids[:len(quality)]


def test_demo_models_are_built_only_when_reached(tmp_path):
    models = iter_demo_models(tmp_path)
    family, name, folder = next(models)  # the untrained GPT-2: no training, seconds
    assert (family, name) == ("causal-lm", "tiny-gpt2-untrained") and (folder / "model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-gpt2-untrained"]  # nothing else trained yet
