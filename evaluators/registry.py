"""Evaluators by name, resolved lazily from "module:Class" strings (as lm-eval's registry).

The API validates suite files against these names without importing any evaluator module,
so it never pulls in torch.
"""
import difflib
import importlib

from evaluators.base import Evaluator

EVALUATORS: dict[str, str] = {
    "lm-eval": "evaluators.language.lm_eval_evaluator:LmEvalEvaluator",
    "clip-zeroshot": "evaluators.multimodal.clip_evaluators:ZeroShotClassification",
    "clip-retrieval": "evaluators.multimodal.clip_evaluators:Retrieval",
    "clip-winoground": "evaluators.multimodal.clip_evaluators:Compositionality",
    "efficiency-inference": "evaluators.efficiency.inference:EfficiencyInferenceEvaluator",
    "efficiency-training": "evaluators.efficiency.training:EfficiencyTrainingEvaluator",
    "efficiency-clip": "evaluators.efficiency.clip_inference:EfficiencyClipEvaluator",
    # An operator's diagnostic: reports what the evaluation child can reach (tests/runners/test_eval_isolation.py).
    "isolation-probe": "evaluators.isolation_probe:IsolationProbe",
}

_instances: dict[str, Evaluator] = {}


class UnknownEvaluatorError(KeyError):
    pass


def check_name(name: str) -> None:
    if name not in EVALUATORS:
        close = difflib.get_close_matches(name, EVALUATORS, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise UnknownEvaluatorError(f"unknown evaluator {name!r}{hint} Known: {', '.join(sorted(EVALUATORS))}")


def get_evaluator(name: str) -> Evaluator:
    """One instance per process, so evaluators may keep caches warm (task indexes …)."""
    check_name(name)
    if name not in _instances:
        module_name, class_name = EVALUATORS[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(f"evaluator {name!r} needs a package that is missing ({exc.name}); "
                              f"run: pip install -e .") from exc
        _instances[name] = getattr(module, class_name)()
    return _instances[name]
