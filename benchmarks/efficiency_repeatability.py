"""Repeatability of the efficiency evaluators: the efficiency-cpu suite's tasks run twice, back to
back, on the tiny demo model; prints both runs' figures and whether they agree.

Agreement, per figure: the medians differ by at most 2·√(se₁² + se₂²) (the standard errors the
runs report), and — the looser check — each run's median lies within the other's [min, max].
Run it on an idle machine; on a shared CPU another process's burst shows up as disagreement.

    .venv/bin/python benchmarks/efficiency_repeatability.py [--model DIR]
"""
import argparse
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIGURES = {"inference": ["tokens_per_s", "prefill_tokens_per_s", "latency_p50_ms", "ttft_ms", "tpot_ms"],
           "training": ["train_tokens_per_s", "train_step_ms"]}
# Where each figure's min/max live in the provenance (seconds for the latency ones).
RANGES = {"tokens_per_s": ("grid", -1, "tokens_per_s", 1), "prefill_tokens_per_s": ("grid", -1, "prefill_tokens_per_s", 1),
          "latency_p50_ms": ("grid", 0, "latency_s", 1000), "ttft_ms": ("grid", 0, "ttft_s", 1000),
          "tpot_ms": ("grid", 0, "tpot_s", 1000)}


def value_range(eff: dict, name: str, value: float, stderr: float | None) -> tuple[float, float]:
    if name in RANGES:
        _, index, key, scale = RANGES[name]
        summary = eff["grid"][index][key]
        return summary["min"] * scale, summary["max"] * scale
    if name == "train_tokens_per_s":
        return eff["tokens_per_s"]["min"], eff["tokens_per_s"]["max"]
    steps = eff["step_s"][eff["warmup_steps"]:]
    return min(steps) * 1000, max(steps) * 1000


def run_once(lm) -> dict:
    from core.catalog import get_suite
    from evaluators.base import EvalSpec
    from evaluators.registry import get_evaluator
    out = {}
    for task in get_suite("efficiency-cpu").tasks:
        spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args, primary_metric=task.primary_metric)
        outcome = get_evaluator(task.evaluator).evaluate(lm, spec, lambda s, f: None)
        eff = outcome.provenance["efficiency"]
        for mv in outcome.metrics:
            if mv.name in FIGURES[task.name]:
                out[mv.name] = (mv.value, mv.stderr, value_range(eff, mv.name, mv.value, mv.stderr), mv.unit)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a causal-LM folder (default: build the tiny demo model)")
    args = parser.parse_args()
    from evaluators.language.tiny_models import build_causal_lm
    from evaluators.loaders import load_causal_lm
    model_dir = args.model or build_causal_lm(Path(tempfile.mkdtemp()) / "tiny", seed=0)
    lm = load_causal_lm(model_dir)
    first, second = run_once(lm), run_once(lm)
    agree_all = True
    print(f"{'figure':22s} {'run 1':>22s} {'run 2':>22s} {'Δ':>9s} {'2·se':>9s}  stderr-agree  range-agree")
    for name in [n for names in FIGURES.values() for n in names]:
        (v1, s1, r1, unit), (v2, s2, r2, _) = first[name], second[name]
        bound = 2 * math.sqrt((s1 or 0) ** 2 + (s2 or 0) ** 2)
        by_stderr = abs(v1 - v2) <= bound
        by_range = r2[0] <= v1 <= r2[1] and r1[0] <= v2 <= r1[1]
        agree_all &= by_stderr or by_range
        print(f"{name:22s} {v1:12.4g} ±{s1 or 0:<8.3g} {v2:12.4g} ±{s2 or 0:<8.3g} {abs(v1 - v2):9.3g} {bound:9.3g}"
              f"  {by_stderr!s:12s}  {by_range!s:11s} [{unit}; run 1 range {r1[0]:.4g}–{r1[1]:.4g}, "
              f"run 2 {r2[0]:.4g}–{r2[1]:.4g}]")
    print("all figures agree (by stderr or by range):", agree_all)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
