"""Demo models: built from code, uploaded and submitted through the API like any author's."""
from pathlib import Path

from cli.client import EvalboardClient

# name → AdamW steps on the bundled train splits; more training should rank higher.
DEMO_CAUSAL_LMS = {"tiny-gpt2-untrained": 0, "tiny-gpt2-brief": 400, "tiny-gpt2-longer": 1600}


def build_demo_models(out_dir: Path) -> dict[str, Path]:
    from evaluators.language.tiny_models import build_causal_lm

    built = {}
    for name, steps in DEMO_CAUSAL_LMS.items():
        folder = out_dir / name
        if not (folder / "model.safetensors").exists():
            build_causal_lm(folder, train_steps=steps, seed=0)
        built[name] = folder
    return built


def submit_demo_models(client: EvalboardClient, out_dir: Path, suite: str = "language-core",
                       clip_suite: str = "clip-core") -> list[str]:
    """Upload and submit the demo language models, then the demo CLIP models; return submission ids."""
    from evaluators.multimodal.demo import build_demo_clip_models

    ids = []
    for family, model_suite, folders in (("causal-lm", suite, build_demo_models(out_dir)),
                                         ("clip", clip_suite, build_demo_clip_models(out_dir))):
        for name, folder in folders.items():
            checkpoint = client.upload_checkpoint(folder, family)
            submission = client.submit(model_name=name, checkpoint_sha256=checkpoint["sha256"], suite=model_suite,
                                       license="Apache-2.0")
            ids.append(submission["id"])
    return ids


def score_in_process(folders: dict[str, Path], suite: str = "language-core") -> dict[str, dict]:
    """Score models on a suite here, without the service: name → {tasks, capabilities, overall}.

    The aggregation is the board's (core.aggregate): primary metric normalised against the
    task's random baseline, capability = mean of its tasks, overall = mean of capabilities.
    For checking and tuning the demo ranking; the service path is `submit_demo_models`.
    """
    from statistics import mean

    from core.aggregate import normalise
    from core.catalog import get_suite
    from evaluators.base import EvalSpec
    from evaluators.language.lm_eval_evaluator import LmEvalEvaluator
    from evaluators.loaders import load_causal_lm

    tasks, evaluator, scores = get_suite(suite).tasks, LmEvalEvaluator(), {}
    for name, folder in folders.items():
        model, raw, by_capability = load_causal_lm(folder), {}, {}
        for task in tasks:
            spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args,
                            primary_metric=task.primary_metric)
            outcome = evaluator.evaluate(model, spec, lambda stage, fraction: None)
            raw[task.name] = next(m.value for m in outcome.metrics if m.primary)
            by_capability.setdefault(task.capability, []).append(normalise(raw[task.name], task.random_baseline))
        capabilities = {c: mean(v) for c, v in sorted(by_capability.items())}
        scores[name] = {"tasks": raw, "capabilities": capabilities, "overall": mean(capabilities.values())}
    return scores
