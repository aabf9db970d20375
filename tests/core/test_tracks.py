"""Tracks as the suite YAMLs declare them: ids, defaults per family, rules checked against an allow-list."""
import pytest
from sqlmodel import select

from core import crud
from core.catalog import Suite, TaskSpec, get_suite
from core.db import session_scope
from core.errors import InvalidRequestError
from core.models import Checkpoint, Model, User
from core.tracks import _track, default_track, get_track, load_tracks, track_of
from tests.seed import seed_scored_model


def test_every_scored_suite_is_a_track_and_efficiency_is_not():
    assert set(load_tracks()) == {"language-core@1.2", "language-open@1.0", "language-open-v2@2.0", "language-zh@1.0",
                                  "clip-core@1.0", "clip-open@1.0"}


def test_the_default_track_per_family():
    assert default_track("causal-lm").id == "language-core@1.2"
    assert default_track("clip").id == "clip-core@1.0"
    assert default_track().id == "language-core@1.2"
    assert get_track(None, "clip").id == "clip-core@1.0"
    assert get_track("clip-open").id == "clip-open@1.0"  # a suite name means its current version


def test_a_track_states_how_it_aggregates():
    track = get_track("language-core@1.2")
    assert track.required == tuple(t.name for t in get_suite("language-core").tasks)
    assert dict(track.capability_weights) == {"cognition": 1.0, "generation": 1.0, "understanding": 1.0}
    assert track.contamination_tasks == ("weekday_reasoning",)
    # Per-item values are read from the samples' metric named like the primary metric, or as the YAML says.
    assert track.item_metric(track.task("cipher_translation")) == "exact_match"
    clip = get_track("clip-core@1.0")
    assert clip.item_metric(clip.task("digits_zeroshot_de")) == "correct"
    assert clip.item_metric(clip.task("shapes_winoground_en")) == "group_score"


def test_scores_map_to_tracks_by_suite_and_version():
    assert track_of("language-core", "1.2").id == "language-core@1.2"
    assert track_of("language-core", "1.1") is None  # an older version is another track, no longer declared
    assert track_of("language-core", None).id == "language-core@1.2"  # recorded before versions were
    assert track_of("efficiency-cpu", "1.0") is None


@pytest.mark.parametrize("track", ["nope", "language-core@", "@1.2", "language-core@1.2 ", "efficiency-cpu"])
def test_an_unknown_track_is_refused_by_name(track):
    with pytest.raises(InvalidRequestError, match="unknown track"):
        get_track(track)


def suite(**aggregation) -> Suite:
    tasks = (TaskSpec("a", "understanding", "lm-eval", "acc", 0.25), TaskSpec("b", "cognition", "lm-eval", "acc", 0.25))
    return Suite("s", "1.0", "causal-lm", "", tasks, aggregation)


@pytest.mark.parametrize("aggregation,problem", [
    ({"required_task": ["a"]}, "unknown aggregation keys"),          # a typo is an error, not ignored
    ({"__class__": "x"}, "unknown aggregation keys"),
    ({"required_tasks": ["a", "zz"]}, "required_tasks names"),
    ({"capability_weights": {"multimodal": 2}}, "capability_weights names"),
    ({"capability_weights": {"cognition": 0}}, "must be positive"),
    ({"precisions": ["float64"]}, "precisions names"),
    ({"contamination_tasks": ["zz"]}, "contamination_tasks names"),
])
def test_aggregation_rules_are_checked_against_the_suite(aggregation, problem):
    with pytest.raises(ValueError, match=problem):
        _track(suite(**aggregation))


def test_weights_and_required_tasks_from_yaml_apply():
    track = _track(suite(required_tasks=["a"], capability_weights={"cognition": 3}, precisions=["bfloat16"]))
    assert track.required == ("a",) and track.weight("cognition") == 3.0 and track.weight("understanding") == 1.0
    assert track.precisions == ("bfloat16",)


def test_a_new_submission_records_its_suite_version():
    model_id = seed_scored_model("versioned", {})
    with session_scope() as s:
        model = s.get(Model, model_id)
        checkpoint = s.exec(select(Checkpoint)).first()
        user = s.get(User, model.owner_id)
        submission, _ = crud.create_submission(session=s, model=model, checkpoint=checkpoint,
                                               suite=get_suite("clip-core"), tasks=[], user=user, hardware_class="cpu",
                                               precision="float32", revision=None)
        assert (submission.suite, submission.suite_version) == ("clip-core", "1.0")
