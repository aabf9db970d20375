"""GPU check of the efficiency evaluators: the efficiency-gpu suite's tasks on cuda:0 with the tiny
demo model and the efficiency-clip-gpu suite with a tiny CLIP (both built here, nothing downloaded),
figures printed with units, plus the CUDA-only
figures (mfu_nominal, energy_per_token_j where pynvml imports) asserted present/sane.

    .venv/bin/python benchmarks/efficiency_gpu_check.py [--device cuda:0] [--precision bfloat16]

Exits 2 without a GPU. Takes well under a minute on one H100/H200-class GPU.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_efficiency(device: str, precision: str, quiet: bool = False) -> tuple[dict, list[str]]:
    """Every efficiency-gpu and efficiency-clip-gpu task once: ({task: {metric: (value, stderr, unit)}}, problems).

    benchmarks/gpu_check.py runs it twice to compare the two runs against their reported dispersion."""
    from core.catalog import get_suite
    from evaluators.base import EvalSpec
    from evaluators.demo_models.causal_lm import build_causal_lm
    from evaluators.loaders import load_causal_lm, load_clip
    from evaluators.demo_models.clip import build_clip
    from evaluators.registry import get_evaluator
    say = (lambda *a: None) if quiet else print
    tmp = Path(tempfile.mkdtemp())
    lm = load_causal_lm(build_causal_lm(tmp / "tiny", seed=0), precision=precision, device=device)
    clip = load_clip(build_clip(tmp / "tiny-clip", seed=0), precision=precision, device=device)
    problems, figures = [], {}
    runs = [(task, lm) for task in get_suite("efficiency-gpu").tasks]
    runs += [(task, clip) for task in get_suite("efficiency-clip-gpu").tasks]
    for task, model in runs:
        spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args, precision=precision,
                        primary_metric=task.primary_metric)
        started = time.perf_counter()
        outcome = get_evaluator(task.evaluator).evaluate(model, spec, lambda s, f: None)
        eff = outcome.provenance["efficiency"]
        say(f"== {task.name} ({time.perf_counter() - started:.1f} s) on {eff['device_name']}, {eff['dtype']}, "
            f"timer {eff['timer']}, peak {json.dumps(eff['peak'])}, memory {eff['memory']['method']}")
        names = {mv.name for mv in outcome.metrics}
        figures[task.name] = {mv.name: (mv.value, mv.stderr, mv.unit) for mv in outcome.metrics}
        for mv in outcome.metrics:
            stderr = f" ± {mv.stderr:.4g}" if mv.stderr is not None else ""
            say(f"  {mv.name:40s} {mv.value:14.6g}{stderr} {mv.unit}{'  (primary)' if mv.primary else ''}")
        if eff["timer"] != "cuda_events":
            problems.append(f"{task.name}: timer {eff['timer']}, expected cuda_events")
        if eff["memory"]["method"] != "cuda_max_memory_allocated":
            problems.append(f"{task.name}: memory {eff['memory']['method']}")
        if eff["peak"]["nominal_tflops"] and not names & {"mfu_nominal", "train_mfu_nominal"}:
            problems.append(f"{task.name}: a nominal peak is known but no nominal MFU was reported")
        if task.name == "inference" and "energy_per_token_j" not in names:
            say("  (no energy_per_token_j: pynvml missing or the driver has no energy counter)")
    return figures, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args()
    import torch
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    _, problems = run_efficiency(args.device, args.precision)
    print("problems:", problems or "none")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
