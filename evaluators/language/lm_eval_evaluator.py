"""Language tasks scored by lm-eval's harness, on the model the runner already loaded.

Bundled tasks are lm-eval YAML files in datasets/lm_eval_tasks whose data files are
resolved here against datasets/<dataset>/; the sha256 of those files is checked against
the set's manifest so a score can always be traced to the exact bytes it was made on.
"""
import hashlib
import json
import math
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from core.config import get_settings
from evaluators.base import EvalOutcome, EvalSpec, Evaluator, MetricValue, ProgressFn, SampleRecord
from evaluators.loaders import LoadedCausalLM


def resolve_task_config(args: dict) -> tuple[dict, dict]:
    """The lm-eval task config with absolute data paths, and the dataset's manifest."""
    datasets_dir = get_settings().datasets_dir
    config = yaml.safe_load((datasets_dir / "lm_eval_tasks" / args["task_yaml"]).read_text())
    data_dir = datasets_dir / args["dataset"]
    manifest = json.loads((data_dir / "manifest.json").read_text())
    files = config["dataset_kwargs"]["data_files"]
    for split, name in files.items():
        path = data_dir / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        published = manifest["splits"][split]["sha256"]
        if digest != published:
            raise RuntimeError(f"{path} does not match its manifest (sha256 {digest[:12]} ≠ {published[:12]})")
        files[split] = str(path)
    if "num_fewshot" in args:
        config["num_fewshot"] = args["num_fewshot"]
    return config, manifest


def config_hash(config: dict) -> str:
    """Hash of the task config with machine-specific paths reduced to file names."""
    portable = json.loads(json.dumps(config))
    portable["dataset_kwargs"]["data_files"] = {k: Path(v).name for k, v in
                                                portable["dataset_kwargs"]["data_files"].items()}
    return hashlib.sha256(json.dumps(portable, sort_keys=True).encode()).hexdigest()


def run_simple_evaluate(loaded: LoadedCausalLM, config: dict, *, batch_size: int, seed: int,
                        task_manager: Any = None) -> dict:
    """The one call into lm-eval: shared by the evaluator and by tests that check it."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size, device=loaded.device)
    return lm_eval.simple_evaluate(model=lm, tasks=[config], num_fewshot=config.get("num_fewshot"),
                                   log_samples=True, task_manager=task_manager, random_seed=seed,
                                   numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


class LmEvalEvaluator(Evaluator):
    name = "lm-eval"
    version = "1"
    family = "causal-lm"

    def __init__(self) -> None:
        self._task_manager = None

    def task_manager(self):
        # Indexing lm-eval's task folder takes seconds; a warm worker does it once.
        if self._task_manager is None:
            from lm_eval.tasks import TaskManager
            self._task_manager = TaskManager()
        return self._task_manager

    def evaluate(self, model: LoadedCausalLM, spec: EvalSpec, progress: ProgressFn) -> EvalOutcome:
        config, manifest = resolve_task_config(spec.args)
        batch_size = int(spec.args.get("batch_size", 16))
        progress("infer", 0.0)
        result = run_simple_evaluate(model, config, batch_size=batch_size, seed=spec.seed,
                                     task_manager=self.task_manager())
        progress("score", 0.9)
        task_name = config["task"]
        return EvalOutcome(
            metrics=self._metrics(result, task_name, spec),
            samples=self._samples(result["samples"][task_name]),
            provenance={
                "dataset": {"name": manifest["name"], "version": manifest["version"], "seed": manifest["seed"],
                            "sha256": {s: v["sha256"] for s, v in manifest["splits"].items()}},
                "task_config_hash": config_hash(config),
                "lm_eval_task": task_name,
                "lm_eval_task_version": result.get("versions", {}).get(task_name),
                "num_fewshot": result.get("n-shot", {}).get(task_name),
                "batch_size": batch_size,
                "seed": spec.seed,
                "libraries": {p: version(p) for p in ("lm_eval", "transformers", "torch")},
            },
        )

    @staticmethod
    def _metrics(result: dict, task_name: str, spec: EvalSpec) -> list[MetricValue]:
        values = result["results"][task_name]
        higher = result.get("higher_is_better", {}).get(task_name, {})
        n = result.get("n-samples", {}).get(task_name, {}).get("effective")
        primary = spec.primary_metric
        metrics = []
        for key, value in values.items():
            if "," not in key or "_stderr," in key:
                continue
            name, _filter = key.split(",", 1)
            metrics.append(MetricValue(name=name, value=float(value),
                                       stderr=_finite(values.get(f"{name}_stderr,{_filter}")), n=n,
                                       higher_is_better=bool(higher.get(name, True)), primary=name == primary))
        return metrics

    @staticmethod
    def _samples(logged: list[dict]) -> list[SampleRecord]:
        records = []
        for s in logged:
            doc = s["doc"]
            choices = doc.get("choices")
            loglikelihoods = [float(r[0]) for r in s["filtered_resps"]] if choices else None
            if choices:
                chosen = max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__)
                prediction, target = choices[chosen], choices[int(s["target"])]
            else:
                prediction, target = str(s["filtered_resps"][0]), str(s["target"])
            metrics = {m: float(s[m]) for m in s.get("metrics", []) if m in s}
            if loglikelihoods is not None:
                metrics["choice_loglikelihoods"] = loglikelihoods
            records.append(SampleRecord(index=int(s["doc_id"]), input=s["arguments"][0][0], target=target,
                                        prediction=prediction, metrics=metrics))
        return records
