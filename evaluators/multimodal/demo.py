"""The tiny CLIP demo models, and an in-process scorer for checking their ranking on clip-core.

`build_demo_clip_models` is what `evalboard demo-models` calls (cli/demo.py) next to the
causal LMs; the models are then uploaded and submitted like any author's (family "clip").
"""
from pathlib import Path

from evaluators.multimodal.tiny_clip import DEMO_CLIPS, build_clip


def build_demo_clip_models(out_dir: Path) -> dict[str, Path]:
    """name → checkpoint folder, untrained then briefly trained; a folder already built is reused."""
    built = {}
    for name, steps in DEMO_CLIPS.items():
        folder = out_dir / name
        if not (folder / "open_clip_model.safetensors").exists():
            build_clip(folder, train_steps=steps, seed=0)
        built[name] = folder
    return built


def score_clip_in_process(folders: dict[str, Path], suite: str = "clip-core") -> dict[str, dict]:
    """name → {tasks (raw primary), normalised, overall}: the board's aggregation, without the service."""
    from statistics import mean

    from core.aggregate import normalise
    from core.catalog import get_suite
    from evaluators.base import EvalSpec
    from evaluators.loaders import load
    from evaluators.registry import get_evaluator

    scores = {}
    for name, folder in folders.items():
        model, raw, normalised = load("clip", folder), {}, {}
        for task in get_suite(suite).tasks:
            spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args,
                            primary_metric=task.primary_metric)
            outcome = get_evaluator(task.evaluator).evaluate(model, spec, lambda stage, fraction: None)
            raw[task.name] = next(m.value for m in outcome.metrics if m.primary)
            normalised[task.name] = normalise(raw[task.name], task.random_baseline)
        scores[name] = {"tasks": raw, "normalised": normalised, "overall": mean(normalised.values())}
    return scores


if __name__ == "__main__":  # python -m evaluators.multimodal.demo <out_dir>: build and print the ranking
    import json
    import sys
    print(json.dumps(score_clip_in_process(build_demo_clip_models(Path(sys.argv[1]))), indent=1))
