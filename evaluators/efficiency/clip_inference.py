"""`efficiency-clip`: image and text encoding throughput, latency, memory and MFU of an open_clip model.

For every batch size of the grid, on seeded synthetic inputs:
- images: random RGB images at the vision tower's input size, put through the model's own
  preprocess and moved to the device once, before timing (that is the data pipeline, not the
  model), then `encode_image`;
- texts: seeded word sequences through the model's own tokenizer (padded to its context length,
  as every open_clip text batch is, so what they say does not change the cost), then `encode_text`.
Each is warmed up (`warmup` calls and at least `min_warmup_s`), then timed in `rounds` blocks of
at least `min_block_s` and `min_trials` calls, the blocks of all grid points interleaved so each
point's trials are spread over the whole run (runtime.interleaved_blocks); CUDA events on GPU,
perf_counter on CPU, the same instruments as the causal-LM evaluators (runtime.py). Medians and
percentiles are over all trials; standard errors between the block medians.

Headline metrics come from two points of the grid, stated in the provenance as `reference`:
- batched (largest batch): images_per_s (the primary), texts_per_s and the MFU of image encoding;
- interactive (smallest batch, 1 in the shipped suites): image_/text_latency_p50/p90/p99_ms.
The latency names carry an `image_`/`text_` prefix because the board keys efficiency figures by
metric name, and there `latency_p50_ms` is a causal LM's prefill. FLOPs per image and per text are
counted by torch's FlopCounterMode on one input (runtime.count_flops), omitted when it sees none.
Every grid point's full summary (median, min, max, percentiles, stderr) is in provenance["grid"].
"""
import random

from evaluators.base import EvalOutcome, EvalSpec, Evaluator, MetricValue, ProgressFn
from evaluators.efficiency import metrics as m
from evaluators.efficiency import runtime as rt
from evaluators.precision import torch_dtype

DEFAULTS = {"batch_sizes": [1, 8, 32], "warmup": 2, "min_warmup_s": 0.2, "rounds": 5, "min_block_s": 0.1,
            "min_trials": 3, "threads": None, "flag_gems": False, "peak_gemm_n": None}
# Caption-like words; any would do, since the tokenizer pads every text to the context length.
WORDS = ("a", "photo", "of", "the", "red", "blue", "green", "small", "large", "circle", "square", "triangle",
         "on", "left", "right", "above", "below", "next", "to", "dog", "cat", "car", "tree", "house")


def _config(spec: EvalSpec) -> dict:
    cfg = rt.checked_args("efficiency-clip", DEFAULTS, spec.args)
    sizes = cfg["batch_sizes"]
    if cfg["rounds"] < 1 or cfg["min_trials"] < 1 or cfg["min_block_s"] < 0 or cfg["warmup"] < 0:
        raise ValueError("efficiency-clip needs rounds ≥ 1, min_trials ≥ 1, min_block_s ≥ 0 and warmup ≥ 0")
    if not sizes or any(int(b) != b or b < 1 for b in sizes):
        raise ValueError("efficiency-clip needs a non-empty list of batch sizes ≥ 1")
    return cfg


def _image_size(model) -> tuple[int, int]:
    size = getattr(model.visual, "image_size", 224)  # open_clip towers (ViT, timm, ModifiedResNet) carry it
    return (size, size) if isinstance(size, int) else tuple(size)


def synthetic_images(torch, preprocess, size: tuple[int, int], count: int, seed: int):
    """`count` seeded random RGB images of the tower's size, as the model's preprocess yields them."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (count, size[0], size[1], 3), dtype=np.uint8)
    return torch.stack([preprocess(Image.fromarray(p)) for p in pixels])


def synthetic_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(count)]


def measure_grid(torch, model, images, tokens, sizes: list[int], cfg: dict, timer, device: str,
                 on_round=lambda done, rounds: None) -> list[dict]:
    """Every batch size's encode_image and encode_text latencies and rates, in interleaved blocks."""
    calls = [fn for batch in sizes
             for fn in (lambda x=images[:batch]: model.encode_image(x), lambda t=tokens[:batch]: model.encode_text(t))]
    with torch.inference_mode():
        for fn in calls:
            rt.warm_up(fn, count=cfg["warmup"], min_seconds=cfg["min_warmup_s"], device=device, torch=torch)
        blocks = rt.interleaved_blocks([lambda fn=fn: timer.time(fn)[1] for fn in calls], rounds=cfg["rounds"],
                                       min_block_s=cfg["min_block_s"], min_trials=cfg["min_trials"],
                                       device=device, torch=torch, on_round=on_round)
    grid = []
    for i, batch in enumerate(sizes):
        image_s, text_s = blocks[2 * i], blocks[2 * i + 1]
        grid.append({"batch": batch, "image_latency_s": m.summarize_blocks(image_s),
                     "text_latency_s": m.summarize_blocks(text_s),
                     "images_per_s": m.summarize_blocks([[m.rate(batch, s) for s in b] for b in image_s]),
                     "texts_per_s": m.summarize_blocks([[m.rate(batch, s) for s in b] for b in text_s])})
    return grid


def headline_metrics(spec: EvalSpec, interactive: dict, batched: dict, *, memory_bytes: int, params: int,
                     flops: dict, peak: dict) -> tuple[list[MetricValue], dict]:
    """The stored figures (rates and MFU at the largest batch, latencies at the smallest), and the MFU of
    both sides for the provenance."""
    metric = m.metric_builder(spec.primary_metric)
    out = [metric(f"{side}s_per_s", batched[f"{side}s_per_s"]["median"], f"{side}s/s",
                  stderr=batched[f"{side}s_per_s"]["stderr"], n=batched[f"{side}s_per_s"]["n"])
           for side in ("image", "text")]
    for side in ("image", "text"):
        lat = interactive[f"{side}_latency_s"]
        out += [metric(f"{side}_latency_p50_ms", m.ms(lat["p50"]), "ms", hib=False, stderr=m.ms(lat["stderr"]),
                       n=lat["n"]),
                metric(f"{side}_latency_p90_ms", m.ms(lat["p90"]), "ms", hib=False, n=lat["n"]),
                metric(f"{side}_latency_p99_ms", m.ms(lat["p99"]), "ms", hib=False, n=lat["n"])]
    out += [metric("peak_memory_bytes", memory_bytes, "bytes", hib=False), metric("params", params, "params", hib=False)]
    mfu = {}
    for side, unit in (("image", "FLOP/image"), ("text", "FLOP/text")):
        if flops[side] is None:
            continue
        out.append(metric(f"flops_per_{side}", flops[side], unit, hib=False))
        achieved = flops[side] * batched[f"{side}s_per_s"]["median"]
        mfu[side] = {"measured": m.mfu(achieved, peak["measured_tflops"]),
                     "nominal": m.mfu(achieved, peak["nominal_tflops"])}
    # MFU of image encoding at the largest batch; the text side's is in the provenance.
    for name, key in (("mfu", "measured"), ("mfu_nominal", "nominal")):
        if mfu.get("image", {}).get(key) is not None:
            out.append(metric(name, mfu["image"][key], "fraction", n=batched["images_per_s"]["n"]))
    return out, mfu


class EfficiencyClipEvaluator(Evaluator):
    name = "efficiency-clip"
    version = "2"  # 2: trials timed in interleaved blocks, stderr between blocks
    family = "clip"

    def evaluate(self, model, spec: EvalSpec, progress: ProgressFn) -> EvalOutcome:
        import torch

        cfg, clip, device = _config(spec), model.model, model.device
        sizes, largest = cfg["batch_sizes"], max(cfg["batch_sizes"])
        torch.manual_seed(spec.seed)
        size = _image_size(clip)
        images = synthetic_images(torch, model.preprocess, size, largest, spec.seed).to(device,
                                                                                          torch_dtype(model.dtype, torch))
        tokens = model.tokenizer(synthetic_texts(largest, spec.seed)).to(device)
        params = sum(p.numel() for p in clip.parameters())
        image_params = sum(p.numel() for p in clip.visual.parameters())
        # Counted before the memory block: the counting pass is no part of the measured footprint.
        flops = {"image": rt.count_flops(torch, lambda: clip.encode_image(images[:1])) or None,
                 "text": rt.count_flops(torch, lambda: clip.encode_text(tokens[:1])) or None}
        with rt.measuring(device, model.dtype, torch, cfg, spec.hardware) as run:
            grid = measure_grid(torch, clip, images, tokens, sizes, cfg, run.timer, device,
                                on_round=run.probe.on_round(progress))
        progress("done", 1.0)
        interactive, batched = min(grid, key=lambda p: p["batch"]), max(grid, key=lambda p: p["batch"])
        out, mfu = headline_metrics(spec, interactive, batched, memory_bytes=run.memory[0].peak_bytes, params=params,
                                    flops=flops, peak=run.peak)
        efficiency = run.provenance(
            batch_sizes=sizes, **{k: cfg[k] for k in ("warmup", "min_warmup_s", "rounds", "min_block_s", "min_trials")},
            stderr="between the medians of the rounds' blocks", image_size=list(size),
            context_length=int(tokens.shape[1]),
            reference={"interactive": interactive["batch"], "batched": batched["batch"]},
            params={"total": params, "image": image_params, "text_and_rest": params - image_params},
            flops={"method": "torch.utils.flop_counter.FlopCounterMode, one input, fused attention off",
                   "per_image": flops["image"], "per_text": flops["text"], "mfu_at_largest_batch": mfu},
            grid=grid)
        return EvalOutcome(metrics=out, samples=[], provenance={"efficiency": efficiency, "batch_size": sizes})
