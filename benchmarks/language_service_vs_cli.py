"""language-core for one demo model: the service's warm worker path vs the `lm_eval` command line.

Both run the same lm-eval task YAMLs on the same data files with the same batch size, measured
side by side in one run:

- service: what a warm worker does per job — imports done and lm-eval's task index built by
  earlier jobs, the model loaded once (timed here) and kept for every task of the submission;
- CLI: `lm_eval --model hf --include_path <resolved YAMLs> --tasks …`, one process that pays
  imports, task indexing and model loading before it evaluates.

The fresh-draw contamination check is left out of the service run: the CLI cannot do it, and
the two must do the same work. Prints both wall times, the ratio service/CLI (issue 5 aims at
≤ 0.5), and whether the two paths agree on every metric and stderr of every task.

    .venv/bin/python -m benchmarks.language_service_vs_cli [--batch-size 16] [--model tiny-gpt2-brief]
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                  DISABLE_MULTIPROC="1")  # as run_simple_evaluate sets it: same stderr work in both


def _task_args(task, batch_size: int) -> dict:
    return {k: v for k, v in task.args.items() if k != "fresh_draw_seed"} | {"batch_size": batch_size}


def run_service(model_dir: Path, tasks, batch_size: int) -> tuple[float, dict[str, dict]]:
    from evaluators.base import EvalSpec
    from evaluators.language.lm_eval_evaluator import LmEvalEvaluator
    from evaluators.loaders import load_causal_lm

    evaluator = LmEvalEvaluator()
    evaluator.task_manager()  # a warm worker indexed lm-eval's tasks for an earlier job
    import lm_eval.models.huggingface  # noqa: F401 — and imported the model code
    started = time.perf_counter()
    model = load_causal_lm(model_dir)
    metrics = {}
    for task in tasks:
        spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=_task_args(task, batch_size),
                        primary_metric=task.primary_metric)
        outcome = evaluator.evaluate(model, spec, lambda stage, fraction: None)
        metrics[task.name] = {m.name: (m.value, m.stderr) for m in outcome.metrics}
    return time.perf_counter() - started, metrics


def run_cli(model_dir: Path, tasks, batch_size: int, work: Path) -> tuple[float, dict[str, dict]]:
    from evaluators.language.lm_eval_evaluator import (
        dump_task_yaml,
        resolve_task_config,
    )

    include = work / "tasks"
    include.mkdir()
    names = {}
    for task in tasks:
        config, _ = resolve_task_config(_task_args(task, batch_size))  # absolute data_files, checked sha256
        (include / f"{config['task']}.yaml").write_text(dump_task_yaml(config))
        names[config["task"]] = task
    command = [str(Path(sys.executable).parent / "lm_eval"), "--model", "hf",
               "--model_args", f"pretrained={model_dir},dtype=float32", "--device", "cpu",
               "--include_path", str(include), "--tasks", ",".join(names), "--batch_size", str(batch_size),
               "--output_path", str(work / "out")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"lm_eval failed:\n{done.stderr[-3000:]}")
    results = json.loads(next((work / "out").rglob("results*.json")).read_text())["results"]
    metrics = {}
    for lm_eval_name, task in names.items():
        reported = results[lm_eval_name]
        metrics[task.name] = {}
        for key, value in reported.items():  # "metric,filter" → (value, stderr), as the service names them
            if "," in key and "_stderr," not in key:
                metric, _filter = key.split(",", 1)
                stderr = reported.get(f"{metric}_stderr,{_filter}")
                metrics[task.name][metric] = (value, stderr if isinstance(stderr, float) else None)
    return elapsed, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="tiny-gpt2-brief")
    args = parser.parse_args()

    from cli.demo import DEMO_CAUSAL_LMS
    from core.catalog import get_suite
    from evaluators.demo_models.causal_lm import build_causal_lm

    tasks = get_suite("language-core").tasks
    with tempfile.TemporaryDirectory(prefix="evalboard-bench-") as tmp:
        work = Path(tmp)
        model_dir = build_causal_lm(work / args.model, train_steps=DEMO_CAUSAL_LMS[args.model], seed=0)
        # lm-eval prints progress ("bootstrapping for stddev: chrf") on stdout; this script's stdout is
        # its report (make proof copies its last lines), so the in-process run's chatter goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            service_s, service_scores = run_service(model_dir, tasks, args.batch_size)
        cli_s, cli_scores = run_cli(model_dir, tasks, args.batch_size, work)

    print(f"language-core ({len(tasks)} tasks), model {args.model}, batch size {args.batch_size}")
    print(f"  service (warm worker): {service_s:7.1f} s")
    print(f"  lm_eval command line:  {cli_s:7.1f} s")
    print(f"  ratio service/CLI:     {service_s / cli_s:7.2f}")
    # Every metric and its stderr, not just the primary: the service memoises BLEU/chrF statistics
    # for the bootstrap and must still give what lm-eval's own command line gives.
    for task in tasks:
        primary = task.primary_metric.split(",")[0]
        service, cli = service_scores[task.name], cli_scores[task.name]
        differ = sorted(m for m in service.keys() | cli.keys() if service.get(m) != cli.get(m))
        print(f"  {task.name:22s} {primary} service {service[primary][0]:.4f}  cli {cli[primary][0]:.4f}  "
              + (f"DIFFERENT: {', '.join(differ)}" if differ else f"all {len(service)} metrics and stderrs equal"))


if __name__ == "__main__":
    main()
