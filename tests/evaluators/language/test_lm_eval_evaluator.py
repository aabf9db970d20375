"""The lm-eval evaluator stores exactly what lm-eval's harness reports, with the record of how."""
import dataclasses
import math

import pytest

from core.catalog import get_suite
from evaluators.base import EvalSpec
from evaluators.language.lm_eval_evaluator import (
    LmEvalEvaluator,
    resolve_task_config,
    run_simple_evaluate,
)

CORE = get_suite("language-core")


def _spec(task, **args) -> EvalSpec:
    return EvalSpec(task=task.name, evaluator=task.evaluator, args={**task.args, **args},
                    primary_metric=task.primary_metric)


@pytest.fixture(scope="module")
def trained_lm(demo_models_dir):
    """The briefly trained demo model, so scores are neither all zero nor all chance and equality means something."""
    from evaluators.loaders import load_causal_lm
    return load_causal_lm(demo_models_dir / "tiny-gpt2-brief")


@pytest.fixture(scope="module")
def outcomes(trained_lm) -> dict:
    """Every language-core task through the evaluator, kept warm across tasks as a worker keeps it."""
    evaluator = LmEvalEvaluator()
    return {task.name: evaluator.evaluate(trained_lm, _spec(task), lambda stage, fraction: None)
            for task in CORE.tasks}


@pytest.mark.parametrize("task", CORE.tasks, ids=lambda t: t.name)
def test_stored_scores_equal_lm_eval_run_directly(task, trained_lm, outcomes):
    outcome = outcomes[task.name]

    config, _ = resolve_task_config(task.args)
    # lm-eval exactly as it comes: sacrebleu recomputes every resample (the evaluator memoises).
    direct = run_simple_evaluate(trained_lm, config, batch_size=task.args["batch_size"], seed=0,
                                 memoise_corpus_stats=False)
    reported = direct["results"][config["task"]]
    stored = {m.name: m for m in outcome.metrics}
    n = direct["n-samples"][config["task"]]["effective"]
    for key, value in reported.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, _filter = key.split(",", 1)
        assert stored[metric].value == value, key
        assert stored[metric].n == n
        stderr = reported[f"{metric}_stderr,{_filter}"]
        assert stored[metric].stderr == (stderr if math.isfinite(stderr) else None)

    primary = [m for m in outcome.metrics if m.primary]
    assert [m.name for m in primary] == [task.primary_metric.split(",")[0]]
    assert len(outcome.samples) == n
    # Per-sample records: the prompt, the reference, and what the model answered after the filters.
    logged = direct["samples"][config["task"]]
    first, record = logged[0], outcome.samples[0]
    assert record.input == first["arguments"][0][0] and record.input.startswith(config["doc_to_text"][:4])
    if config["output_type"] == "generate_until":
        assert record.prediction == first["filtered_resps"][0] and record.target == first["target"]
        assert record.metrics["exact_match"] in (0.0, 1.0)
    else:
        assert len(record.metrics["choice_loglikelihoods"]) == len(first["doc"]["choices"])
    assert outcome.provenance["dataset"]["sha256"]["test"]
    assert outcome.provenance["lm_eval_task_hashes"][config["task"]]


def test_free_form_answers_are_found_in_what_a_trained_model_writes(outcomes):
    # The extraction regexes and the strip filter must find the answers, not "[invalid]" everywhere.
    for task in CORE.tasks:
        if task.random_baseline == 0.0:
            predictions = [s.prediction for s in outcomes[task.name].samples]
            assert sum(p != "[invalid]" and p != "" for p in predictions) > len(predictions) / 2, task.name


def test_a_fresh_draw_gives_a_contamination_gap(outcomes):
    assert CORE.task("weekday_reasoning").args["fresh_draw_seed"]
    metrics = {m.name: m for m in outcomes["weekday_reasoning"].metrics}
    assert metrics["fresh_exact_match"].n == metrics["exact_match"].n == 240
    assert metrics["contamination_gap"].value == pytest.approx(
        metrics["exact_match"].value - metrics["fresh_exact_match"].value)
    assert not metrics["contamination_gap"].higher_is_better and not metrics["contamination_gap"].primary


def test_language_open_tasks_are_known_to_lm_eval_offline():
    from lm_eval.tasks import TaskManager
    known = set(TaskManager().all_tasks)  # lm-eval's local task index: no network
    for task in get_suite("language-open").tasks:
        name, manifest = resolve_task_config(task.args)
        assert manifest is None and name == task.args["lm_eval_task"] and name in known


def test_a_named_lm_eval_task_is_called_by_name_and_recorded(monkeypatch, tmp_path):
    """The call the evaluator makes for gsm8k, and what it keeps of lm-eval's answer (canned here)."""
    from evaluators.language import lm_eval_evaluator
    calls = []

    def fake_simple_evaluate(model, config, **kwargs):
        calls.append((config, kwargs))
        sample = {"doc_id": 0, "doc": {"question": "q"}, "target": "4", "arguments": [("Q: 2+2?\nA:", {})],
                  "filtered_resps": ["4"], "metrics": ["exact_match"], "exact_match": 1.0,
                  "doc_hash": "d", "prompt_hash": "p", "target_hash": "t"}
        return {"results": {"gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.25,
                                      "exact_match_stderr,strict-match": 0.01,
                                      "exact_match,flexible-extract": 0.5,
                                      "exact_match_stderr,flexible-extract": 0.02}},
                "n-samples": {"gsm8k": {"original": 1319, "effective": 1319}},
                "versions": {"gsm8k": 3.0}, "n-shot": {"gsm8k": 5},
                "configs": {"gsm8k": {"task": "gsm8k", "output_type": "generate_until",
                                      "generation_kwargs": {"until": ["Question:"]}}},
                "samples": {"gsm8k": [{**sample, "filter": "strict-match"},
                                      {**sample, "filter": "flexible-extract", "filtered_resps": ["x"]}]}}

    monkeypatch.setattr(lm_eval_evaluator, "run_simple_evaluate", fake_simple_evaluate)
    task = get_suite("language-open").task("gsm8k")
    # The runner always names the worker's dataset mirror (a named task reads its data there; canned here).
    spec = dataclasses.replace(_spec(task), dataset_mirror_dir=str(tmp_path))
    outcome = LmEvalEvaluator().evaluate(object(), spec, lambda *a: None)

    (config, kwargs), = calls
    assert config == "gsm8k" and kwargs["num_fewshot"] == 5 and kwargs["batch_size"] == 8
    metrics = {m.name: m for m in outcome.metrics}
    assert set(metrics) == {"exact_match,strict-match", "exact_match,flexible-extract"}
    assert metrics["exact_match,strict-match"].primary and not metrics["exact_match,flexible-extract"].primary
    assert [s.prediction for s in outcome.samples] == ["4"]  # the primary filter's responses only
    assert outcome.provenance["lm_eval_task_version"] == 3.0 and outcome.provenance["dataset"] is None
    assert outcome.provenance["lm_eval_task_hashes"]["gsm8k"] and outcome.provenance["task_config_hash"]
