"""Leaderboard normalisation and subject-group sub-scores, from lm-eval's own result layout."""
import math

import pytest

from core.catalog import get_suite
from evaluators.language.subtask_scores import SubtaskScoreError, open_llm_normalised, subtask_metrics


def _result(scores: dict[str, tuple[float, float, int]], metric: str = "acc_norm") -> dict:
    """lm-eval's simple_evaluate layout for these (value, stderr, items) per task."""
    return {"results": {t: {f"{metric},none": v, f"{metric}_stderr,none": se} for t, (v, se, _) in scores.items()},
            "n-samples": {t: {"original": n, "effective": n} for t, (_, _, n) in scores.items()}}


def test_each_subtask_is_rescaled_to_its_own_chance_clipped_at_zero_and_averaged_equally():
    result = _result({"two_way": (0.75, 0.02, 100), "five_way": (0.10, 0.03, 50), "three_way": (1 / 3, 0.01, 10)})
    args = {"subtask_scores": {"metric": "acc_norm",
                               "baselines": {"two_way": 0.5, "five_way": 0.2, "three_way": 1 / 3}}}
    [metric] = subtask_metrics(result, args, "normalised_acc_norm")
    # (0.75 - 0.5)/0.5 = 0.5; 0.10 is below 0.2's chance: 0; exactly chance: 0.
    assert metric.name == "normalised_acc_norm" and metric.primary
    assert metric.value == pytest.approx(0.5 / 3)
    assert metric.n == 160
    # Only the unclipped subtask's error carries through, scaled as its score is.
    assert metric.stderr == pytest.approx(math.sqrt((0.02 / 0.5) ** 2) / 3)
    assert open_llm_normalised(0.05, 0.25) == 0.0 and open_llm_normalised(1.0, 0.25) == 1.0


def test_subject_groups_weight_their_subjects_by_items_as_lm_eval_groups_do():
    result = _result({"ceval-valid_law": (0.5, 0.1, 20), "ceval-valid_logic": (0.8, 0.1, 80)}, metric="acc")
    args = {"subtask_scores": {"metric": "acc", "groups": {"humanities": ["ceval-valid_law", "ceval-valid_logic"]}}}
    [metric] = subtask_metrics(result, args, "acc")
    assert metric.name == "acc:humanities" and not metric.primary
    assert metric.value == pytest.approx((0.5 * 20 + 0.8 * 80) / 100) and metric.n == 100


def test_a_result_the_suite_names_but_lm_eval_did_not_report_is_the_suites_fault():
    with pytest.raises(SubtaskScoreError, match="no acc_norm for 'missing'"):
        subtask_metrics(_result({}), {"subtask_scores": {"metric": "acc_norm", "baselines": {"missing": 0.5}}}, None)
    assert not issubclass(SubtaskScoreError, (ValueError, RuntimeError, KeyError))  # reported as infra, not user


@pytest.fixture(scope="module")
def known() -> set[str]:
    from lm_eval.tasks import TaskManager
    return set(TaskManager().all_tasks)  # lm-eval's local task index: no network


@pytest.mark.parametrize("suite", ["language-open-v2", "language-zh", "language-open"])
def test_every_task_and_subtask_the_suites_name_is_in_lm_eval_s_local_index(suite, known):
    for task in get_suite(suite).tasks:
        assert task.args["lm_eval_task"] in known
        config = task.args.get("subtask_scores") or {}
        named = [*config.get("baselines", {}), *(s for group in config.get("groups", {}).values() for s in group)]
        assert set(named) <= known, set(named) - known
        if "baselines" in config:  # already normalised: the aggregation must not rescale it again
            assert task.random_baseline == 0.0 and task.primary_metric == f"normalised_{config['metric']}"


def test_language_zh_groups_cover_every_subject_once_per_benchmark(known):
    suite = get_suite("language-zh")
    ceval = suite.task("ceval").args["subtask_scores"]["groups"]
    listed = [s for group in ceval.values() for s in group]
    assert sorted(listed) == sorted(t for t in known if t.startswith("ceval-valid_")) and len(set(listed)) == 52
    cmmlu = suite.task("cmmlu").args["subtask_scores"]["groups"]
    main = [s for g, subjects in cmmlu.items() if g != "china_specific" for s in subjects]
    assert sorted(main) == sorted(t for t in known if t.startswith("cmmlu_")) and len(set(main)) == 67
    assert set(cmmlu["china_specific"]) < set(main)
