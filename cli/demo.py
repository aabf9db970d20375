"""Demo models: built from code, uploaded and submitted through the API like any author's.

`evalboard up` submits them on a first start in the order that shows a newcomer something soonest:
each untrained model (built in a second) first, so a ranked row appears while the others still
train; each trained model as soon as it is built; then the efficiency suites, so the Efficiency page
has points too. Those come last in the worker's first-in-first-out queue: the board fills first, and
no demo training shares the CPU with their timings.
"""
import sys
from collections.abc import Iterator
from pathlib import Path

from cli.client import EvalboardClient

# name → AdamW steps on the bundled train splits; more training should rank higher.
DEMO_CAUSAL_LMS = {"tiny-gpt2-untrained": 0, "tiny-gpt2-brief": 400, "tiny-gpt2-longer": 1600}
# Each family's quality suite and efficiency suite on the CPU worker.
DEMO_SUITES = {"causal-lm": "language-core", "clip": "clip-core"}
DEMO_EFFICIENCY_SUITES = {"causal-lm": "efficiency-cpu", "clip": "efficiency-clip-cpu"}
# Speed and memory depend on the architecture, not on the training, and each family's demo models
# share one: measuring one model per family is the whole measurement, at a third of the worker's time.
# The most trained one, whose overall is the top of its board.
DEMO_MEASURED = ("tiny-gpt2-longer", "tiny-clip-brief")


def build_demo_lm(out_dir: Path, name: str) -> Path:
    """One demo causal LM's folder; one already built is reused."""
    from evaluators.demo_models.causal_lm import build_causal_lm

    folder = out_dir / name
    if not (folder / "model.safetensors").exists():
        build_causal_lm(folder, train_steps=DEMO_CAUSAL_LMS[name], seed=0)
    return folder


def build_demo_clip(out_dir: Path, name: str) -> Path:
    """One demo CLIP's folder; one already built is reused."""
    from evaluators.demo_models.clip import DEMO_CLIPS, build_clip

    folder = out_dir / name
    if not (folder / "open_clip_model.safetensors").exists():
        build_clip(folder, train_steps=DEMO_CLIPS[name], seed=0)
    return folder


def build_demo_models(out_dir: Path) -> dict[str, Path]:
    return {name: build_demo_lm(out_dir, name) for name in DEMO_CAUSAL_LMS}


def demo_build_order() -> list[tuple[str, str]]:
    """(family, name) cheapest first: both untrained models, then by training steps."""
    from evaluators.demo_models.clip import DEMO_CLIPS

    models = [("causal-lm", name, steps) for name, steps in DEMO_CAUSAL_LMS.items()]
    models += [("clip", name, steps) for name, steps in DEMO_CLIPS.items()]
    # Untrained first; the trained ones after, in the order their families list them (a stable sort).
    return [(family, name) for family, name, steps in sorted(models, key=lambda m: m[2] > 0)]


def iter_demo_models(out_dir: Path) -> Iterator[tuple[str, str, Path]]:
    """(family, name, folder), each built only when it is reached."""
    for family, name in demo_build_order():
        yield family, name, (build_demo_lm if family == "causal-lm" else build_demo_clip)(out_dir, name)


def submit_demo_models(client: EvalboardClient, out_dir: Path, efficiency: bool = True) -> list[str]:
    """Upload and submit each demo model as soon as it is built, then (optionally) the efficiency
    suites of DEMO_MEASURED; return the submission ids in the order they were made."""
    ids, uploaded = [], []
    for family, name, folder in iter_demo_models(out_dir):
        checkpoint = client.upload_checkpoint(folder, family)
        uploaded.append((family, name, checkpoint["sha256"]))
        ids.append(_submit(client, name, checkpoint["sha256"], DEMO_SUITES[family]))
    measured = [(family, name, sha256) for family, name, sha256 in uploaded if efficiency and name in DEMO_MEASURED]
    for family, name, sha256 in measured:
        ids.append(_submit(client, name, sha256, DEMO_EFFICIENCY_SUITES[family]))
    return ids


def _submit(client: EvalboardClient, name: str, sha256: str, suite: str) -> str:
    submission = client.submit(model_name=name, checkpoint_sha256=sha256, suite=suite, license="Apache-2.0")
    # Progress for `up`'s demo log (stdout keeps only the ids, for scripts).
    print(f"submitted {name} to {suite}: {submission['id']}", file=sys.stderr, flush=True)
    return submission["id"]


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
