"""`efficiency-inference`: latency, throughput, TTFT/TPOT, memory and MFU of a causal LM, measured.

For every (batch size, prompt length) of the grid, on seeded random token ids:
- prefill latency: one forward pass over the prompt;
- greedy generation with the KV cache, `new_tokens` tokens, timed step by step: step 0 is the
  prefill that yields the first token (TTFT), each later step one token per sequence (TPOT).
A trial is one of each. Every point is warmed up (`warmup` calls and at least `min_warmup_s`),
then timed in `rounds` blocks of at least `min_block_s` and `min_trials` trials, the blocks of all
points interleaved so each point's trials are spread over the whole run
(runtime.interleaved_blocks). Medians and percentiles are over all trials; standard errors
between the block medians.

Headline metrics (the ones stored as scores and shown on the board) come from two points of the
grid, stated in the provenance as `reference`:
- interactive (first batch size, first prompt length): latency_p50/p90/p99_ms, ttft_ms, tpot_ms;
- batched (last batch size, last prompt length): tokens_per_s (generated tokens/s, the primary),
  prefill_tokens_per_s and the MFU of the prefill (the compute-bound phase).
MFU divides by the measured GEMM peak (the worker's hardware profile where it applies, else one
timed here: runtime.peaks, which provenance["efficiency"]["peak"] records) and by the nominal one.
Every grid point's full summary (median, min, max, percentiles, stderr) is in provenance["grid"].
"""
import inspect
import random

from evaluators.base import EvalOutcome, EvalSpec, Evaluator, MetricValue, ProgressFn
from evaluators.efficiency import metrics as m
from evaluators.efficiency import runtime as rt

DEFAULTS = {"batch_sizes": [1, 4], "prompt_lengths": [16, 32], "new_tokens": 8, "warmup": 2, "min_warmup_s": 0.2,
            "rounds": 5, "min_block_s": 0.1, "min_trials": 2,
            "threads": None, "flag_gems": False, "peak_gemm_n": None}


def _ids(torch, vocab: int, batch: int, length: int, seed: int, device: str):
    # Random ids, not text: the cost of a forward pass does not depend on what the tokens say,
    # and random ids need no tokenizer round-trip to hit an exact length.
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, length), generator=generator).to(device)


def _cache_keyword(model) -> str:
    # transformers 5.x renamed `past_key_values` to `cache` (the old name warns, then goes away);
    # hub models on older code still take the old one.
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _generate_steps(torch, model, ids, new_tokens: int, timer) -> list[float]:
    """Greedy decoding with the KV cache; returns each step's seconds (step 0 = prefill)."""
    steps, past, inputs = [], None, ids
    attention = torch.ones_like(ids)
    keyword = _cache_keyword(model)
    for _ in range(new_tokens):
        def step(inputs=inputs, attention=attention, past=past):  # bound now: called within this iteration
            out = model(input_ids=inputs, attention_mask=attention, use_cache=True, **{keyword: past})
            return getattr(out, keyword), out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        (past, inputs), seconds = timer.time(step)
        attention = torch.cat([attention, torch.ones_like(inputs)], dim=1)
        steps.append(seconds)
    return steps


def _config(spec: EvalSpec) -> dict:
    cfg = rt.checked_args("efficiency-inference", DEFAULTS, spec.args)
    if cfg["rounds"] < 1 or cfg["min_trials"] < 1 or cfg["min_block_s"] < 0:
        raise ValueError("efficiency-inference needs rounds ≥ 1, min_trials ≥ 1 and min_block_s ≥ 0")
    if cfg["new_tokens"] < 1 or not cfg["batch_sizes"] or not cfg["prompt_lengths"]:
        raise ValueError("efficiency-inference needs new_tokens ≥ 1 and a non-empty grid")
    return cfg


def point_trial(torch, model, ids, new_tokens: int, timer):
    """One trial of a grid point: (prefill seconds, each generation step's seconds)."""
    def trial():
        prefill = timer.time(lambda: model(input_ids=ids))[1]
        return prefill, _generate_steps(torch, model, ids, new_tokens, timer)
    return trial


def summarize_point(batch: int, length: int, new_tokens: int, blocks: list[list[tuple]]) -> dict:
    """A grid point's figures from its blocks of (prefill seconds, step seconds) trials."""
    def per_block(figure):
        return [[v for v in (figure(trial) for trial in block) if v is not None] for block in blocks]
    tokens_out = batch * new_tokens
    tpot = per_block(lambda t: m.ttft_tpot(t[1])[1])
    return {"batch": batch, "prompt_length": length,
            "latency_s": m.summarize_blocks(per_block(lambda t: t[0])),
            "ttft_s": m.summarize_blocks(per_block(lambda t: m.ttft_tpot(t[1])[0])),
            "tpot_s": m.summarize_blocks(tpot) if any(tpot) else None,
            "prefill_tokens_per_s": m.summarize_blocks(per_block(lambda t: m.rate(batch * length, t[0]))),
            "tokens_per_s": m.summarize_blocks(per_block(lambda t: m.rate(tokens_out, sum(t[1])))),
            "generation_s": m.summarize_blocks(per_block(lambda t: sum(t[1])))}


def measure_grid(torch, model, points: list[tuple[int, int]], *, vocab: int, cfg: dict, device: str, seed: int,
                 timer, before_timing=lambda: None, on_round=lambda done, rounds: None) -> list[dict]:
    """Every (batch, prompt length) point's prefill and generation timings, in interleaved blocks;
    `before_timing` is called between the warm-ups and the first block (the energy meter starts there)."""
    trials = []
    with torch.inference_mode():
        for i, (batch, length) in enumerate(points):
            ids = _ids(torch, vocab, batch, length, seed + i, device)

            def warm_call(ids=ids):
                model(input_ids=ids)
                _generate_steps(torch, model, ids, min(2, cfg["new_tokens"]), timer)
            rt.warm_up(warm_call, count=cfg["warmup"], min_seconds=cfg["min_warmup_s"], device=device, torch=torch)
            trials.append(point_trial(torch, model, ids, cfg["new_tokens"], timer))
        before_timing()
        blocks = rt.interleaved_blocks(trials, rounds=cfg["rounds"], min_block_s=cfg["min_block_s"],
                                       min_trials=cfg["min_trials"], device=device, torch=torch, on_round=on_round)
    return [summarize_point(batch, length, cfg["new_tokens"], point_blocks)
            for (batch, length), point_blocks in zip(points, blocks)]


def _position_limit(config) -> int | None:
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)


def _shape(config) -> tuple[int, int]:
    """(layers, model width) of a GPT-2 or Llama-style config, for the attention term of FLOPs/token."""
    return (getattr(config, "n_layer", None) or getattr(config, "num_hidden_layers", 0),
            getattr(config, "n_embd", None) or getattr(config, "hidden_size", 0))


def headline_metrics(spec: EvalSpec, interactive: dict, batched: dict, *, memory_bytes: int, params: int,
                     fpt: float, peak: dict) -> list[MetricValue]:
    """The stored figures: latencies at the interactive point, rates and MFU at the batched one."""
    metric = m.metric_builder(spec.primary_metric)
    lat, tps, prefill = interactive["latency_s"], batched["tokens_per_s"], batched["prefill_tokens_per_s"]
    out = [metric("tokens_per_s", tps["median"], "tokens/s", stderr=tps["stderr"], n=tps["n"]),
           metric("prefill_tokens_per_s", prefill["median"], "tokens/s", stderr=prefill["stderr"], n=prefill["n"]),
           metric("latency_p50_ms", m.ms(lat["p50"]), "ms", hib=False, stderr=m.ms(lat["stderr"]), n=lat["n"]),
           metric("latency_p90_ms", m.ms(lat["p90"]), "ms", hib=False, n=lat["n"]),
           metric("latency_p99_ms", m.ms(lat["p99"]), "ms", hib=False, n=lat["n"])]
    for name, key in (("ttft_ms", "ttft_s"), ("tpot_ms", "tpot_s")):
        if interactive[key]:
            figure = interactive[key]
            out.append(metric(name, m.ms(figure["median"]), "ms", hib=False, stderr=m.ms(figure["stderr"]),
                              n=figure["n"]))
    out += [metric("peak_memory_bytes", memory_bytes, "bytes", hib=False),
            metric("params", params, "params", hib=False),
            metric("flops_per_token", fpt, "FLOP/token", hib=False)]
    prefill_flops = fpt * prefill["median"]  # the prefill is the compute-bound phase
    for name, tflops in (("mfu", peak["measured_tflops"]), ("mfu_nominal", peak["nominal_tflops"])):
        value = m.mfu(prefill_flops, tflops)
        if value is not None:
            out.append(metric(name, value, "fraction", n=prefill["n"]))
    return out


class EfficiencyInferenceEvaluator(Evaluator):
    name = "efficiency-inference"
    version = "2"  # 2: trials timed in interleaved blocks, stderr between blocks
    family = "causal-lm"

    def evaluate(self, model, spec: EvalSpec, progress: ProgressFn) -> EvalOutcome:
        import torch

        cfg, lm, device = _config(spec), model.model, model.device
        limit, longest = _position_limit(lm.config), max(cfg["prompt_lengths"]) + cfg["new_tokens"]
        if limit and longest > limit:
            raise ValueError(f"prompt length + new tokens = {longest} exceeds the model's {limit} positions")
        params = sum(p.numel() for p in lm.parameters())
        random.seed(spec.seed)
        torch.manual_seed(spec.seed)
        points = [(b, length) for b in cfg["batch_sizes"] for length in cfg["prompt_lengths"]]
        with rt.measuring(device, model.dtype, torch, cfg, spec.hardware) as run:
            grid = measure_grid(torch, lm, points, vocab=lm.config.vocab_size, cfg=cfg, device=device, seed=spec.seed,
                                timer=run.timer, before_timing=run.energy.start, on_round=run.probe.on_round(progress))
        progress("done", 1.0)
        interactive, batched = grid[0], grid[-1]
        n_layer, d_model = _shape(lm.config)
        # FLOPs/token at the batched point's mean context (half the prompt attends on average).
        context = batched["prompt_length"] // 2
        fpt = m.flops_per_token(params, n_layer=n_layer, context=context, d_model=d_model)
        out = headline_metrics(spec, interactive, batched, memory_bytes=run.memory[0].peak_bytes, params=params,
                               fpt=fpt, peak=run.peak)
        # Every token generated while the meter ran: the timed trials and each block's one untimed
        # settling trial, prefill passes included (NVML's counter is too coarse to split them).
        tokens_total = sum(p["batch"] * cfg["new_tokens"] * (p["tokens_per_s"]["n"] + cfg["rounds"]) for p in grid)
        if run.joules is not None and tokens_total:
            out.append(m.metric_builder(spec.primary_metric)("energy_per_token_j", run.joules / tokens_total,
                                                             "J/token", hib=False))
        settings = {k: cfg[k] for k in ("batch_sizes", "prompt_lengths", "new_tokens", "warmup", "min_warmup_s",
                                        "rounds", "min_block_s", "min_trials")}
        efficiency = run.provenance(
            **settings, stderr="between the medians of the rounds' blocks",
            reference={"interactive": [interactive["batch"], interactive["prompt_length"]],
                       "batched": [batched["batch"], batched["prompt_length"]]},
            flops_per_token={"formula": "2*params + 2*n_layer*context*d_model", "params": params,
                             "n_layer": n_layer, "d_model": d_model, "context": context},
            energy_j=run.joules, grid=grid)
        return EvalOutcome(metrics=out, samples=[], provenance={"efficiency": efficiency,
                                                                "batch_size": cfg["batch_sizes"]})
