"""Language tasks scored by lm-eval's harness, on the model the runner already loaded.

A task is either bundled — an lm-eval YAML in datasets/lm_eval_tasks whose data files are
resolved here against datasets/<dataset>/, their sha256 checked against the set's manifest —
or a standard lm-eval task named by `lm_eval_task` (connected deployments only: lm-eval
fetches its data from the Hugging Face hub). Either way the score is traced to what it was
made on: manifest sha256 or lm-eval's own task config, version and sample hash.

An optional `fresh_draw_seed` also scores a fresh test draw of a bundled set (its generator
run with another seed): the published-minus-fresh gap is a contamination signal.
"""
import contextlib
import hashlib
import importlib
import json
import math
import os
import tempfile
import types
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from evaluators.base import (
    BUNDLED_DATASETS_DIR,
    EvalOutcome,
    EvalSpec,
    Evaluator,
    MetricValue,
    ProgressFn,
    SampleRecord,
)
from evaluators.language.batching import (
    DEFAULT_MAX_AUTO_BATCH_SIZE,
    BatchOutOfMemory,
    is_out_of_memory,
    parse_batch_size,
    run_halving,
)
from evaluators.language.backends import hf_weights_off_the_gpu, parse_backend, vllm_model
from evaluators.language.corpus_stats import memoised_segment_statistics
from evaluators.language.mirror import serving
from evaluators.language.subtask_scores import subtask_metrics
from evaluators.language.request_ledger import RequestLedger
from evaluators.loaders import LoadedCausalLM


class _TaskYamlLoader(yaml.SafeLoader):
    """Safe YAML plus lm-eval's `!function module.name`, resolved by import (never eval'd)."""


def _import_function(loader: yaml.SafeLoader, node: yaml.Node):
    module, _, name = loader.construct_scalar(node).rpartition(".")
    return getattr(importlib.import_module(module), name)


_TaskYamlLoader.add_constructor("!function", _import_function)


def load_task_yaml(path: Path) -> dict:
    """A bundled task YAML as lm-eval reads it: `!function` tags become the functions they name."""
    return yaml.load(path.read_text(), Loader=_TaskYamlLoader)


class _TaskYamlDumper(yaml.SafeDumper):
    """Writes a resolved task config back as a YAML lm-eval reads (functions as `!function`)."""


def _function_tag(dumper: yaml.SafeDumper, fn: Any) -> yaml.Node:
    return dumper.represent_scalar("!function", f"{fn.__module__}.{fn.__qualname__}")


_TaskYamlDumper.add_representer(types.FunctionType, _function_tag)


def dump_task_yaml(config: dict) -> str:
    return yaml.dump(config, Dumper=_TaskYamlDumper, sort_keys=False, allow_unicode=True)


def resolve_task_config(args: dict, data_dir: Path | None = None, *,
                        datasets_dir: str | Path = BUNDLED_DATASETS_DIR) -> tuple[dict | str, dict | None]:
    """What to hand lm-eval for this task, and the bundled set's manifest (None for a named lm-eval task).

    A named task resolves to its name alone: lm-eval looks it up in its own local task index,
    so nothing is fetched until the evaluation itself runs. `data_dir` points a bundled task
    at another draw of its set (a fresh draw), checked against that draw's manifest; `datasets_dir`
    is where the bundled sets and task YAMLs lie (EvalSpec.datasets_dir).
    """
    if "lm_eval_task" in args:
        return args["lm_eval_task"], None
    datasets_dir = Path(datasets_dir)
    config = load_task_yaml(datasets_dir / "lm_eval_tasks" / args["task_yaml"])
    data_dir = data_dir or datasets_dir / args["dataset"]
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


PLAIN_PROMPTS = {"apply_chat_template": False, "fewshot_as_multiturn": False, "system_instruction": None}


def checked_chat(chat: dict | None) -> dict:
    """The spec's chat options, their shape checked again here (a spec is data from the worker, which
    validated them: core/submission_options.py); None is plain prompts."""
    if chat is None:
        return dict(PLAIN_PROMPTS)
    if not isinstance(chat, dict) or set(chat) != set(PLAIN_PROMPTS):
        raise ValueError(f"chat options must be exactly {', '.join(PLAIN_PROMPTS)}")
    for key in ("apply_chat_template", "fewshot_as_multiturn"):
        if type(chat[key]) is not bool:
            raise ValueError(f"{key} must be true or false")
    if chat["system_instruction"] is not None and not isinstance(chat["system_instruction"], str):
        raise ValueError("system_instruction must be text or null")
    if chat["fewshot_as_multiturn"] and not chat["apply_chat_template"]:
        raise ValueError("fewshot_as_multiturn needs apply_chat_template")
    return dict(chat)


def _portable(value: Any) -> str:
    # A function (a `!function` metric) by its import path: its repr carries a memory address.
    if callable(value):
        return f"{value.__module__}.{value.__qualname__}"
    return str(value)


def config_hash(config: dict) -> str:
    """Hash of the task config with machine-specific paths reduced to file names."""
    portable = json.loads(json.dumps(config, default=_portable))
    files = portable.get("dataset_kwargs", {}).get("data_files")
    if files:
        portable["dataset_kwargs"]["data_files"] = {k: Path(v).name for k, v in files.items()}
    return hashlib.sha256(json.dumps(portable, sort_keys=True).encode()).hexdigest()


def samples_hash(samples: list[dict]) -> str:
    """lm-eval's task hash (as its EvaluationTracker computes it): every doc, prompt and target."""
    from lm_eval.utils import hash_string
    return hash_string("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples))


def run_simple_evaluate(loaded: LoadedCausalLM, config: dict | str, *, batch_size: int | str, seed: int,
                        num_fewshot: int | None = None, task_manager: Any = None,
                        memoise_corpus_stats: bool = True, apply_chat_template: bool = False,
                        fewshot_as_multiturn: bool = False, system_instruction: str | None = None,
                        max_batch_size: int = DEFAULT_MAX_AUTO_BATCH_SIZE,
                        ledger_for: Callable[[Any], RequestLedger] | None = None, backend: str = "hf") -> dict:
    """The one call into lm-eval: shared by the evaluator and by tests that check it (which turn the
    memo off, to compare against sacrebleu's own recomputation).

    The chat options are the submission's, checked (core/submission_options.py) and passed by name.
    `ledger_for` wraps the model (progress, request cache); out of memory raises BatchOutOfMemory
    with the batch size in use, for evaluators/language/batching.py to halve.
    """
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    # chrF/BLEU stderr is bootstrapped; lm-eval would fork a process pool for it from inside
    # a worker that holds torch threads. In-process gives the same numbers (same seeds).
    os.environ.setdefault("DISABLE_MULTIPROC", "1")
    if isinstance(config, dict):
        num_fewshot = config.get("num_fewshot")
    engine = None
    memo = memoised_segment_statistics() if memoise_corpus_stats else contextlib.nullcontext()
    try:
        with contextlib.ExitStack() as stack:
            if backend == "vllm":
                stack.enter_context(hf_weights_off_the_gpu(loaded))
                engine = vllm_model(loaded, batch_size=batch_size, max_batch_size=max_batch_size, seed=seed)
            else:
                engine = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size,
                              max_batch_size=max_batch_size, device=loaded.device)
            lm = ledger_for(engine) if ledger_for is not None else engine
            stack.enter_context(memo)  # same BLEU/chrF stderrs, without re-extracting n-grams 100 times
            return lm_eval.simple_evaluate(model=lm, tasks=[config], num_fewshot=num_fewshot,
                                           log_samples=True, task_manager=task_manager, random_seed=seed,
                                           numpy_random_seed=seed, torch_random_seed=seed,
                                           fewshot_random_seed=seed, apply_chat_template=apply_chat_template,
                                           fewshot_as_multiturn=fewshot_as_multiturn,
                                           system_instruction=system_instruction)
    except Exception as exc:
        if is_out_of_memory(exc):
            detected = [b for b in getattr(engine, "batch_sizes", {}).values() if isinstance(b, int)]
            in_use = batch_size if isinstance(batch_size, int) else min(detected, default=max_batch_size)
            raise BatchOutOfMemory(in_use, exc) from exc
        if _is_template_error(exc):
            raise ValueError(f"the model's chat template failed to render: {type(exc).__name__}: {exc}") from exc
        raise


def _is_template_error(exc: BaseException) -> bool:
    import jinja2
    return isinstance(exc, jinja2.exceptions.TemplateError)


def chat_template_of(loaded: LoadedCausalLM) -> str:
    """The template lm-eval will render (the tokenizer's own; a named default if it holds several).

    A chat submission whose checkpoint has none is the author's error, said before any request runs."""
    from lm_eval.models.huggingface import HFLM

    template = HFLM.chat_template(types.SimpleNamespace(tokenizer=loaded.tokenizer), True)
    if not template:
        raise ValueError("the submission asks for the chat template, but the checkpoint's tokenizer has none "
                         "(chat_template.jinja or tokenizer_config.json's chat_template)")
    return template


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _choice_target(target: Any, choices: list[str]) -> str:
    """The right choice's text: lm-eval logs the doc's target, an index or (MMLU-Pro, MuSR) the choice itself."""
    if isinstance(target, str) and not target.strip().isdigit():
        return target.strip()
    return choices[int(target)].strip()


def _task_name(config: dict | str) -> str:
    return config["task"] if isinstance(config, dict) else config


def _libraries(backend: str) -> dict:
    return {p: version(p) for p in ("lm_eval", "transformers", "torch", "sacrebleu", *(("vllm",) if backend == "vllm"
                                                                                       else ()))}


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


REQUEST_CACHE_FILE = "lm-eval-requests.sqlite"


class _LedgeredRun:
    """The lm-eval runs of one evaluation, sharing one request ledger: progress per request batch,
    halving on out-of-memory, and — where the worker gave this run a cache folder (`request_cache`
    in the spec's args, runners/eval_sandbox.py) — results kept on disk, so a retried run resumes."""

    def __init__(self, evaluator: "LmEvalEvaluator", model: LoadedCausalLM, spec: EvalSpec, batch_size: int | str,
                 chat: dict, progress: ProgressFn):
        folder = spec.args.get("request_cache")
        self.cache_path = str(Path(folder) / REQUEST_CACHE_FILE) if isinstance(folder, str) and folder else None
        self.evaluator, self.model, self.spec, self.batch_size = evaluator, model, spec, batch_size
        self.chat, self.progress = chat, progress
        self.tried: list = []
        self.ledger = RequestLedger(cache_path=self.cache_path)
        self.resumed = self.ledger.held_at_start  # results a killed earlier attempt of this run left
        self.computed = self.reused = 0

    def __enter__(self) -> "_LedgeredRun":
        return self

    def __exit__(self, *exc) -> None:
        self.ledger.close()

    def __call__(self, config: dict | str, stage: str, start: float, end: float) -> dict:
        def report(fraction: float) -> None:
            self.progress(stage, start + (end - start) * fraction)

        def ledger_for(lm: Any) -> RequestLedger:
            return self.ledger.wrap(lm, report)

        def call(size: int | str) -> dict:
            return self.evaluator._run(self.model, config, self.spec, size, self.chat, ledger_for)

        result, tried = run_halving(call, self.batch_size, device=getattr(self.model, "device", "cpu"))
        self.tried += tried
        self.computed, self.reused = self.ledger.computed, self.ledger.reused
        return result


class LmEvalEvaluator(Evaluator):
    name = "lm-eval"
    version = "2"
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
        config, manifest = resolve_task_config(spec.args, datasets_dir=spec.datasets_folder)
        batch_size = parse_batch_size(spec.args.get("batch_size", 16))
        parse_backend(spec.args.get("backend"))  # a suite naming an unknown engine fails before any request
        chat = checked_chat(spec.chat)
        template = chat_template_of(model) if chat["apply_chat_template"] else None
        fresh = spec.args.get("fresh_draw_seed") is not None and manifest is not None
        progress("infer", 0.0)
        # Progress per request batch: the main run fills "infer" up to where the fresh draw (if any) starts.
        run = _LedgeredRun(self, model, spec, batch_size, chat, progress)
        mirror_dir = Path(spec.dataset_mirror_dir) if spec.dataset_mirror_dir else None
        with run, serving(spec.args, mirror_dir) as mirror:  # a named task's data: the dataset mirror, offline
            result = run(config, "infer", 0.0, 0.5 if fresh else 0.9)
            task_name = _task_name(config)
            metrics = self._metrics(result, task_name, spec)
            metrics += subtask_metrics(result, spec.args, spec.primary_metric)  # leaderboard/subject-group scores
            primary = next((m for m in metrics if m.primary), None)
            if fresh and primary is not None:
                progress("fresh draw", 0.5)
                metrics += self._fresh_draw(run, spec, manifest["name"], primary)
        progress("score", 0.9)
        samples = [s for group in result["samples"].values() for s in group]
        return EvalOutcome(
            metrics=metrics,
            samples=self._samples(samples, self._filter_of(spec.primary_metric, result, task_name)),
            provenance={
                "dataset": None if manifest is None else {
                    "name": manifest["name"], "version": manifest["version"], "seed": manifest["seed"],
                    "sha256": {s: v["sha256"] for s, v in manifest["splits"].items()}},
                "dataset_mirror": mirror.provenance(),
                "task_config_hash": config_hash(config if isinstance(config, dict) else result["configs"]),
                "lm_eval_task": task_name,
                "lm_eval_task_version": result.get("versions", {}).get(task_name),
                "lm_eval_task_hashes": {t: samples_hash(s) for t, s in sorted(result["samples"].items())},
                "num_fewshot": result.get("n-shot", {}).get(task_name, spec.args.get("num_fewshot")),
                "generation_kwargs": {t: c.get("generation_kwargs") for t, c in result.get("configs", {}).items()
                                      if c.get("output_type") == "generate_until"} or None,
                "fresh_draw_seed": spec.args.get("fresh_draw_seed"),
                "chat_template": {**chat, "system_instruction_sha256": _sha256(chat["system_instruction"]),
                                  "template_sha256": _sha256(template)},
                "backend": parse_backend(spec.args.get("backend")),
                "batch_size": batch_size,
                "batch_sizes_tried": run.tried,
                "requests": {"computed": run.computed, "reused": run.reused, "resumed": run.resumed},
                "seed": spec.seed,
                "libraries": _libraries(parse_backend(spec.args.get("backend"))),
            },
        )

    def _run(self, model: LoadedCausalLM, config: dict | str, spec: EvalSpec, batch_size: int | str,
             chat: dict | None = None, ledger_for: Callable[[Any], RequestLedger] | None = None) -> dict:
        chat = chat or PLAIN_PROMPTS
        return run_simple_evaluate(model, config, batch_size=batch_size, seed=spec.seed,
                                   num_fewshot=spec.args.get("num_fewshot"), task_manager=self.task_manager(),
                                   apply_chat_template=chat["apply_chat_template"],
                                   fewshot_as_multiturn=chat["fewshot_as_multiturn"],
                                   system_instruction=chat["system_instruction"],
                                   max_batch_size=int(spec.args.get("max_batch_size", DEFAULT_MAX_AUTO_BATCH_SIZE)),
                                   ledger_for=ledger_for, backend=parse_backend(spec.args.get("backend")))

    def _fresh_draw(self, run: "_LedgeredRun", spec: EvalSpec, set_name: str,
                    primary: MetricValue) -> list[MetricValue]:
        """Score a fresh test draw; a model that saw the published test items scores lower on it."""
        from evaluators.language.generators import write_set

        with tempfile.TemporaryDirectory(prefix="evalboard-fresh-") as tmp:
            write_set(set_name, Path(tmp), seed=int(spec.args["fresh_draw_seed"]))
            config, _ = resolve_task_config(spec.args, data_dir=Path(tmp) / set_name, datasets_dir=spec.datasets_folder)
            result = run(config, "fresh draw", 0.5, 0.9)
        fresh = next(m for m in self._metrics(result, config["task"], spec) if m.primary)
        return [MetricValue(name=f"fresh_{primary.name}", value=fresh.value, stderr=fresh.stderr, n=fresh.n,
                            higher_is_better=primary.higher_is_better),
                MetricValue(name="contamination_gap", value=primary.value - fresh.value, n=fresh.n,
                            higher_is_better=False)]

    @staticmethod
    def _filter_of(primary_metric: str | None, result: dict, task_name: str) -> str | None:
        """The filter whose responses are the predictions: the primary metric's, else the only one
        (or lm-eval's unfiltered "none"), so each item is recorded once."""
        if primary_metric and "," in primary_metric:
            return primary_metric.split(",", 1)[1]
        filters = {k.split(",", 1)[1] for k in result["results"].get(task_name, {}) if "," in k}
        if len(filters) == 1:
            return filters.pop()
        return "none" if "none" in filters else None

    @staticmethod
    def _metrics(result: dict, task_name: str, spec: EvalSpec) -> list[MetricValue]:
        """One MetricValue per lm-eval "metric,filter" key.

        A task with one filter (lm-eval's "none", or one named in its YAML such as "extract")
        stores plain metric names; with several, every filter but "none" is kept in the name.
        The primary metric may be named either way ("exact_match" or "exact_match,extract").
        """
        values = result["results"][task_name]
        higher = result.get("higher_is_better", {}).get(task_name, {})
        n_samples = result.get("n-samples", {})
        n = n_samples.get(task_name, {}).get("effective")
        if n is None and n_samples:  # a group (e.g. mmlu): its subtasks' items together
            n = sum(v.get("effective", 0) for v in n_samples.values())
        keys = [k for k in values if "," in k and "_stderr," not in k]
        several_filters = len({k.split(",", 1)[1] for k in keys}) > 1
        metrics = []
        for key in keys:
            metric, _filter = key.split(",", 1)
            name = key if several_filters and _filter != "none" else metric
            value = _finite(values[key])
            if value is None:
                continue
            metrics.append(MetricValue(name=name, value=value,
                                       stderr=_finite(values.get(f"{metric}_stderr,{_filter}")), n=n,
                                       higher_is_better=bool(higher.get(metric, True)),
                                       primary=spec.primary_metric in (name, key)))
        return metrics

    @staticmethod
    def _samples(logged: list[dict], filter_name: str | None) -> list[SampleRecord]:
        records = []
        for s in logged:
            if filter_name is not None and s.get("filter", filter_name) != filter_name:
                continue  # the same item scored under another filter
            # Multiple choice asks one loglikelihood per (context, continuation); the
            # continuations are the choices, as the model saw them.
            choices = [a[1] for a in s["arguments"]] if len(s["arguments"]) > 1 else None
            loglikelihoods = [float(r[0]) for r in s["filtered_resps"]] if choices else None
            if choices:
                chosen = max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__)
                prediction, target = choices[chosen].strip(), _choice_target(s["target"], choices)
            else:  # generate_until: the response after the task's filters (stripped, extracted)
                prediction, target = str(s["filtered_resps"][0]), str(s["target"])
            # Corpus metrics (chrF, BLEU) log (reference, prediction) pairs per item, not numbers.
            metrics = {m: float(s[m]) for m in s.get("metrics", []) if isinstance(s.get(m), (int, float))}
            if loglikelihoods is not None:
                metrics["choice_loglikelihoods"] = loglikelihoods
            records.append(SampleRecord(index=int(s["doc_id"]), input=s["arguments"][0][0], target=target,
                                        prediction=prediction, metrics=metrics))
        return records
