"""GPU check of the production language path (issue 21), on one GPU:

1. a ~0.45B Llama-style causal LM built from a config with random weights (nothing is downloaded;
   its tokenizer is trained here on the bundled train splits), saved as a normal checkpoint folder;
2. every language-core task through the real evaluator (lm-eval) in bfloat16 with batch size `auto`,
   on the `hf` backend and — where vLLM is installed — on the `vllm` backend; for each: wall time,
   throughput (tokens/s: prompt, continuation and generated tokens), MFU against the measured bf16
   GEMM peak and the chip's nominal one (2·params FLOPs per token: attention not counted), peak memory;
3. parity between the backends: per-choice loglikelihoods of the multiple-choice tasks must agree to
   PARITY_NATS + PARITY_REL·|ll| (bf16 kernels differ), accuracies within PARITY_ACC;
4. the efficiency-gpu and efficiency-clip-gpu suites run twice (benchmarks/efficiency_gpu_check.py):
   each figure reported with a standard error must agree across the runs within 3 combined standard errors.

    .venv/bin/python benchmarks/gpu_check.py [--device cuda:0] [--json $OUT/gpu_check.json]

Exits 2 without a GPU, 1 when a check fails, 0 otherwise. A few minutes on one H100/H200-class GPU.
Its output goes into benchmarks/REPORT.md ("GPU check").
"""
import argparse
import importlib.util
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARITY_NATS, PARITY_REL, PARITY_ACC = 0.05, 0.01, 0.02
SIZE = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=28, num_attention_heads=16,
            num_key_value_heads=8, max_position_embeddings=2048)


def build_half_billion(out: Path, seed: int = 0, device: str = "cuda") -> tuple[Path, int]:
    """A Llama-style checkpoint of ~0.45B random bf16 parameters with the tiny models' BPE tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from evaluators.base import BUNDLED_DATASETS_DIR
    from evaluators.demo_models.causal_lm import build_tokenizer
    from evaluators.train_splits import train_texts

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(train_texts(BUNDLED_DATASETS_DIR), vocab_size=2048)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False, dtype="bfloat16", **SIZE)
    with torch.device(device):  # initialised on the GPU: seconds, not minutes
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text("# gpu-check-0.45b\n\nRandom weights from a Llama config, for "
                                   "benchmarks/gpu_check.py.\n")
    (out / "LICENSE").write_text("Apache-2.0\n")
    del model
    torch.cuda.empty_cache()
    return out, params


def count_tokens(tokenizer, samples) -> int:
    """Tokens the model processed for these records: each choice scored with its context, or the prompt and
    what was generated."""
    total = 0
    for s in samples:
        prompt = len(tokenizer(s.input)["input_ids"])
        choices = s.metrics.get("choice_loglikelihoods")
        if choices:
            total += len(choices) * prompt  # the choices themselves are a few tokens each: counted in `prompt`
        else:
            total += prompt + len(tokenizer(s.prediction)["input_ids"])
    return total


def device_memory_used(device: str) -> int:
    import torch
    free, total = torch.cuda.mem_get_info(torch.device(device))
    return total - free


def run_language(model_dir: Path, params: int, backend: str, device: str, peaks: dict) -> dict:
    import torch

    from core.catalog import get_suite
    from evaluators.base import EvalSpec
    from evaluators.language.lm_eval_evaluator import LmEvalEvaluator
    from evaluators.loaders import load_causal_lm

    loaded = load_causal_lm(model_dir, precision="bfloat16", device=device)
    evaluator = LmEvalEvaluator()
    rows = {}
    for task in get_suite("language-core").tasks:
        args = {**task.args, "batch_size": "auto", "backend": backend}
        spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=args, precision="bfloat16",
                        primary_metric=task.primary_metric)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        outcome = evaluator.evaluate(loaded, spec, lambda stage, fraction: None)
        torch.cuda.synchronize()
        wall = time.perf_counter() - started
        tokens = count_tokens(loaded.tokenizer, outcome.samples)
        per_s = tokens / wall
        flops = 2 * params * per_s
        peak_bytes = (torch.cuda.max_memory_allocated(device) if backend == "hf" else device_memory_used(device))
        primary = next(m for m in outcome.metrics if m.primary)
        rows[task.name] = {
            "wall_s": round(wall, 2), "tokens": tokens, "tokens_per_s": round(per_s, 1),
            "mfu_measured": round(flops / (peaks["measured_tflops"] * 1e12), 4),
            "mfu_nominal": round(flops / (peaks["nominal_tflops"] * 1e12), 4) if peaks["nominal_tflops"] else None,
            "peak_memory_gib": round(peak_bytes / 2**30, 2),
            "memory_method": "cuda_max_memory_allocated" if backend == "hf" else "device_used (vLLM preallocates)",
            "batch_sizes_tried": outcome.provenance["batch_sizes_tried"],
            "primary": {primary.name: primary.value},
            "loglikelihoods": [ll for s in outcome.samples for ll in s.metrics.get("choice_loglikelihoods", [])],
            "predictions": [s.prediction for s in outcome.samples],
        }
        row = rows[task.name]
        print(f"  {backend:5s} {task.name:22s} {wall:7.2f} s {tokens:9d} tok {per_s:11.1f} tok/s "
              f"MFU {row['mfu_measured']:.4f} (nominal {row['mfu_nominal']}) peak {row['peak_memory_gib']:.2f} GiB "
              f"batch {row['batch_sizes_tried']} {primary.name}={primary.value:.4f}")
    return rows


def parity(hf: dict, vllm: dict) -> list[str]:
    problems = []
    for task, a in hf.items():
        b = vllm[task]
        if a["loglikelihoods"]:
            diffs = [abs(x - y) - (PARITY_NATS + PARITY_REL * abs(x)) for x, y in zip(a["loglikelihoods"],
                                                                                        b["loglikelihoods"])]
            worst = max(abs(x - y) for x, y in zip(a["loglikelihoods"], b["loglikelihoods"]))
            over = sum(d > 0 for d in diffs)
            (acc_a,), (acc_b,) = a["primary"].values(), b["primary"].values()
            print(f"  parity {task:22s} max |Δll| {worst:.4f} nats, {over} of {len(diffs)} over tolerance, "
                  f"{next(iter(a['primary']))} hf {acc_a:.4f} vllm {acc_b:.4f}")
            if over or abs(acc_a - acc_b) > PARITY_ACC:
                problems.append(f"parity {task}: {over} loglikelihoods over tolerance, accuracy Δ {acc_a - acc_b:+.4f}")
        else:
            same = sum(x == y for x, y in zip(a["predictions"], b["predictions"])) / max(1, len(a["predictions"]))
            print(f"  parity {task:22s} greedy generations identical for {same:.1%} (bf16 kernels may diverge; "
                  f"reported, not checked)")
    return problems


def repeatability(first: dict, second: dict) -> list[str]:
    problems = []
    for task, metrics in first.items():
        for name, (value, stderr, unit) in metrics.items():
            other, other_se, _ = second[task][name]
            if stderr is None or other_se is None:
                continue
            bound = 3 * math.sqrt(stderr ** 2 + other_se ** 2)
            ok = abs(value - other) <= bound
            print(f"  {task:24s} {name:32s} {value:12.5g} vs {other:12.5g} {unit or '':10s} "
                  f"|Δ| {abs(value - other):.4g} ≤ {bound:.4g}: {'ok' if ok else 'OUTSIDE'}")
            if not ok:
                problems.append(f"{task}.{name}: runs differ by {abs(value - other):.4g} {unit}, over 3 combined "
                                f"standard errors ({bound:.4g})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--skip-efficiency", action="store_true")
    args = parser.parse_args()
    import torch
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    from benchmarks.efficiency_gpu_check import run_efficiency
    from evaluators.efficiency.metrics import nominal_peak_tflops
    from runners.hardware import measure_gemm_tflops

    started = time.perf_counter()
    name = torch.cuda.get_device_name(torch.device(args.device))
    peaks = {"measured_tflops": measure_gemm_tflops(torch, args.device, torch.bfloat16, n=4096),
             "nominal_tflops": nominal_peak_tflops(name, "bfloat16")}
    print(f"device {name}; bf16 GEMM measured {peaks['measured_tflops']:.1f} TFLOPS, nominal {peaks['nominal_tflops']}")
    model_dir, params = build_half_billion(Path(tempfile.mkdtemp()) / "gpu-check-0.45b", device=args.device)
    print(f"model: Llama config, random bf16 weights, {params / 1e9:.3f} B parameters")
    problems: list[str] = []
    summary: dict = {"device": name, "params": params, "peaks": peaks}

    print("== language-core, hf backend, bf16, batch auto")
    summary["hf"] = run_language(model_dir, params, "hf", args.device, peaks)
    if importlib.util.find_spec("vllm"):
        print("== language-core, vllm backend, bf16, batch auto")
        summary["vllm"] = run_language(model_dir, params, "vllm", args.device, peaks)
        print("== parity hf vs vllm")
        problems += parity(summary["hf"], summary["vllm"])
    else:
        summary["vllm"] = None
        print("== vllm backend: not installed on this machine (pip install .[vllm] in the GPU worker image); "
              "skipped, parity not checked")

    if not args.skip_efficiency:
        print("== efficiency-gpu + efficiency-clip-gpu, run 1")
        first, problems_1 = run_efficiency(args.device, "bfloat16")
        print("== run 2")
        second, problems_2 = run_efficiency(args.device, "bfloat16", quiet=True)
        print("== repeatability: run 1 vs run 2, within 3 combined standard errors")
        problems += problems_1 + problems_2 + repeatability(first, second)
        summary["efficiency"] = {"run_1": first, "run_2": second}
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    summary["problems"] = problems
    print(f"wall time {summary['wall_s']} s")
    print("problems:", problems or "none")
    if args.json:
        for backend in ("hf", "vllm"):
            for row in (summary.get(backend) or {}).values():
                row.pop("loglikelihoods"), row.pop("predictions")
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
