"""A suite scored here, in this process, without the service: for checking and tuning the demo
rankings (tests, benchmarks), with the board's aggregation.

Each task's spec is built as a worker builds it (its data folders from the settings), the model is
loaded by the same loader the evaluation child uses, and the scores are the board's: the primary
metric normalised against the task's random baseline (core.aggregate), a capability the mean of its
tasks, overall the mean of the capabilities.
"""
from pathlib import Path
from statistics import mean

from core.aggregate import normalise
from core.catalog import get_suite
from core.config import get_settings
from evaluators.base import EvalSpec
from evaluators.loaders import load
from evaluators.registry import get_evaluator
from runners.eval_sandbox import with_worker_folders


def score_in_process(folders: dict[str, Path], suite: str, family: str) -> dict[str, dict]:
    """name → {tasks (raw primary), normalised, capabilities, overall} for checkpoint folders of one family."""
    tasks, settings, scores = get_suite(suite).tasks, get_settings(), {}
    for name, folder in folders.items():
        model, raw, normalised, by_capability = load(family, folder), {}, {}, {}
        for task in tasks:
            spec = with_worker_folders(EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args,
                                                primary_metric=task.primary_metric), settings)
            outcome = get_evaluator(task.evaluator).evaluate(model, spec, lambda stage, fraction: None)
            raw[task.name] = next(m.value for m in outcome.metrics if m.primary)
            normalised[task.name] = normalise(raw[task.name], task.random_baseline)
            by_capability.setdefault(task.capability, []).append(normalised[task.name])
        capabilities = {c: mean(v) for c, v in sorted(by_capability.items())}
        scores[name] = {"tasks": raw, "normalised": normalised, "capabilities": capabilities,
                        "overall": mean(capabilities.values())}
    return scores


if __name__ == "__main__":  # python -m runners.in_process <out_dir>: build the demo CLIPs, print their ranking
    import json
    import sys

    from evaluators.demo_models.clip import build_demo_clip_models
    print(json.dumps(score_in_process(build_demo_clip_models(Path(sys.argv[1])), "clip-core", "clip"), indent=1))
