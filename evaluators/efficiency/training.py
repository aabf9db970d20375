"""`efficiency-training`: a fixed number of AdamW fine-tuning steps on bundled text, measured.

Trains a deep copy of the loaded model (the runner keeps the loaded one warm for later tasks,
so it must not change). Data: the bundled language train splits
(`evaluators.train_splits.train_texts`, under EvalSpec.datasets_dir), tokenized once, concatenated and cut into
`seq_len`-token blocks, so every step trains exactly batch_size · seq_len tokens (no padding).

FlagPerf names, as measured here:
- e2e_time_s: wall time of the whole evaluation — copying the model, preparing the data,
  the two loss evaluations and all training steps;
- throughput_raw_samples_per_s: trained samples / e2e_time_s;
- throughput_no_eval_samples_per_s: trained samples / (e2e_time_s − evaluation time), i.e.
  setup and every step included, the before/after loss evaluations not;
- throughput_pure_compute_samples_per_s: samples / the summed time of forward + backward +
  optimiser step, warm-up steps left out (the steady-state compute alone).
train_tokens_per_s (the primary) is the pure-compute figure in tokens; train_mfu is
6 · params · train_tokens_per_s over the measured GEMM peak — the worker's hardware profile where it
applies, else one timed here (runtime.peaks) — and train_mfu_nominal over the table's.
The loss check evaluates a fixed held-out batch before and after training; train_loss_first /
train_loss_last are the first and last training steps' losses.

Metric names carry a `train_` prefix where inference has the same figure: the board keys
efficiency figures by metric name per model and hardware class.
"""
import copy
import random
import time

from evaluators.base import EvalOutcome, EvalSpec, Evaluator, MetricValue, ProgressFn
from evaluators.efficiency import metrics as m
from evaluators.efficiency import runtime as rt
from evaluators.train_splits import train_texts

DEFAULTS = {"steps": 8, "warmup_steps": 2, "blocks": 4, "batch_size": 8, "seq_len": 64, "lr": 3e-3,
            "threads": None, "datasets": None, "peak_gemm_n": None}


def _config(spec: EvalSpec) -> dict:
    cfg = rt.checked_args("efficiency-training", DEFAULTS, spec.args)
    if cfg["steps"] <= cfg["warmup_steps"] or cfg["batch_size"] < 1 or cfg["seq_len"] < 2:
        raise ValueError("efficiency-training needs steps > warmup_steps, batch_size ≥ 1 and seq_len ≥ 2")
    if not 1 <= cfg["blocks"] <= cfg["steps"] - cfg["warmup_steps"]:
        raise ValueError("efficiency-training needs 1 ≤ blocks ≤ the timed steps (steps − warmup_steps)")
    return cfg


def consecutive_blocks(values: list, count: int) -> list[list]:
    """`values` cut into `count` runs of consecutive items, as even as they go (the first ones longer)."""
    size, extra = divmod(len(values), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(values[start:end])
        start = end
    return out


def token_blocks(tokenizer, texts: list[str], seq_len: int, torch):
    """All texts, joined by EOS, as a (blocks, seq_len) tensor of token ids."""
    eos = tokenizer.eos_token or ""
    ids = tokenizer(eos.join(texts), return_tensors="pt")["input_ids"][0]
    usable = (len(ids) // seq_len) * seq_len
    if usable == 0:
        raise ValueError(f"the training text has fewer than {seq_len} tokens")
    return ids[:usable].view(-1, seq_len)


class HeldOutLoss:
    """The loss on a fixed batch the training never sees (so the before/after check is honest), and the
    seconds spent computing it (left out of throughput_no_eval)."""

    def __init__(self, net, batch, device: str, torch):
        self.net, self.batch, self.device, self.torch, self.seconds = net, batch, device, torch, 0.0

    def __call__(self) -> float:
        started = time.perf_counter()
        self.net.eval()
        with self.torch.no_grad():
            loss = float(self.net(input_ids=self.batch, labels=self.batch).loss)
        rt.synchronize(self.device, self.torch)
        self.seconds += time.perf_counter() - started
        self.net.train()
        return loss


def train(net, optimiser, blocks, pool: list[int], rng, cfg: dict, *, device: str, timer, probe,
          progress) -> tuple[list[float], list[float], int]:
    """`cfg["steps"]` AdamW steps on random batches of `pool`: (each step's seconds, each step's loss, batch size).

    The host probe runs between steps, outside their timing, about once per block of timed steps."""
    step_s, losses, batch = [], [], None
    probe_every = max(1, (cfg["steps"] - cfg["warmup_steps"]) // cfg["blocks"])
    for step in range(cfg["steps"]):
        if step >= cfg["warmup_steps"] and (step - cfg["warmup_steps"]) % probe_every == 0:
            probe.measure()
        progress("train", step / cfg["steps"])
        batch = blocks[rng.sample(pool, min(cfg["batch_size"], len(pool)))].to(device)

        def train_step(batch=batch):  # bound now: called within this iteration
            optimiser.zero_grad(set_to_none=True)
            loss = net(input_ids=batch, labels=batch).loss
            loss.backward()
            optimiser.step()
            return loss.detach()
        loss, seconds = timer.time(train_step)
        losses.append(float(loss))
        step_s.append(seconds)
    return step_s, losses, len(batch)


def training_metrics(spec: EvalSpec, cfg: dict, *, step_s: list[float], losses: list[float], samples_per_step: int,
                     e2e_s: float, eval_s: float, loss_before: float, loss_after: float, memory_bytes: int,
                     params: int, peak: dict) -> tuple[list[MetricValue], dict]:
    """The stored figures (FlagPerf's throughputs, the step time, the losses, MFU) and their block summaries."""
    seq_len, timed = cfg["seq_len"], step_s[cfg["warmup_steps"]:]
    samples_total = samples_per_step * cfg["steps"]
    # Steps depend on the one before (the optimiser's state), so they cannot be interleaved like
    # inference trials; the standard error is taken between consecutive blocks of steps instead,
    # which covers the host's drift over the training run (metrics.summarize_blocks).
    step_blocks = consecutive_blocks(timed, cfg["blocks"])
    summaries = {"samples_per_s": m.summarize_blocks([[m.rate(samples_per_step, s) for s in b] for b in step_blocks]),
                 "tokens_per_s": m.summarize_blocks([[m.rate(samples_per_step, s) * seq_len for s in b]
                                                     for b in step_blocks])}
    step_ms = m.summarize_blocks([[s * 1000.0 for s in b] for b in step_blocks])
    pure_compute = m.rate(samples_per_step * len(timed), sum(timed))
    metric = m.metric_builder(spec.primary_metric, default_n=len(timed))
    compute_stderr = summaries["samples_per_s"]["stderr"]
    out = [
        metric("train_tokens_per_s", pure_compute * seq_len, "tokens/s", stderr=summaries["tokens_per_s"]["stderr"]),
        metric("train_samples_per_s", pure_compute, "samples/s", stderr=compute_stderr),
        metric("e2e_time_s", e2e_s, "s", hib=False, n=1),
        metric("throughput_raw_samples_per_s", m.rate(samples_total, e2e_s), "samples/s", n=1),
        metric("throughput_no_eval_samples_per_s", m.rate(samples_total, e2e_s - eval_s), "samples/s", n=1),
        metric("throughput_pure_compute_samples_per_s", pure_compute, "samples/s", stderr=compute_stderr),
        metric("train_step_ms", step_ms["median"], "ms", hib=False, stderr=step_ms["stderr"]),
        metric("train_peak_memory_bytes", memory_bytes, "bytes", hib=False, n=1),
        metric("train_loss_first", losses[0], "nats/token", hib=False, n=1),
        metric("train_loss_last", losses[-1], "nats/token", hib=False, n=1),
        metric("eval_loss_before", loss_before, "nats/token", hib=False, n=cfg["batch_size"]),
        metric("eval_loss_after", loss_after, "nats/token", hib=False, n=cfg["batch_size"]),
        metric("loss_decreased", 1.0 if loss_after < loss_before else 0.0, "bool", n=1),
    ]
    flops = m.training_flops_per_s(params, pure_compute * seq_len)
    for name, tflops in (("train_mfu", peak["measured_tflops"]), ("train_mfu_nominal", peak["nominal_tflops"])):
        value = m.mfu(flops, tflops)
        if value is not None:
            out.append(metric(name, value, "fraction"))
    return out, summaries


class EfficiencyTrainingEvaluator(Evaluator):
    name = "efficiency-training"
    version = "2"  # 2: stderr between blocks of steps
    family = "causal-lm"

    def evaluate(self, model, spec: EvalSpec, progress: ProgressFn) -> EvalOutcome:
        import torch

        cfg, device = _config(spec), model.device
        bs, seq_len = cfg["batch_size"], cfg["seq_len"]
        config = model.model.config
        limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        if limit and seq_len > limit:
            raise ValueError(f"seq_len {seq_len} exceeds the model's {limit} positions")
        rng = random.Random(spec.seed)
        torch.manual_seed(spec.seed)
        with rt.measuring(device, model.dtype, torch, cfg, spec.hardware) as run:
            blocks = token_blocks(model.tokenizer, train_texts(spec.datasets_folder, cfg["datasets"]), seq_len, torch)
            order = list(range(len(blocks)))
            rng.shuffle(order)
            net = copy.deepcopy(model.model).to(device)
            params = sum(p.numel() for p in net.parameters())
            optimiser = torch.optim.AdamW(net.parameters(), lr=cfg["lr"])
            held_out = HeldOutLoss(net, blocks[order[:bs]].to(device), device, torch)
            loss_before = held_out()
            step_s, losses, samples_per_step = train(net, optimiser, blocks, order[bs:] or order, rng, cfg,
                                                     device=device, timer=run.timer, probe=run.probe, progress=progress)
            loss_after = held_out()
        progress("done", 1.0)
        out, summaries = training_metrics(
            spec, cfg, step_s=step_s, losses=losses, samples_per_step=samples_per_step,
            e2e_s=time.perf_counter() - run.started, eval_s=held_out.seconds, loss_before=loss_before,
            loss_after=loss_after, memory_bytes=run.memory[0].peak_bytes, params=params, peak=run.peak)
        efficiency = run.provenance(
            **{k: cfg[k] for k in ("steps", "warmup_steps", "blocks")},
            stderr="between the medians of consecutive blocks of timed steps", batch_size=bs, seq_len=seq_len,
            lr=cfg["lr"], optimizer="AdamW", data_blocks=len(blocks), step_s=step_s, losses=losses,
            eval_s=round(held_out.seconds, 4), **summaries,
            flops={"formula": "6*params*tokens_per_s", "params": params})
        return EvalOutcome(metrics=out, samples=[], provenance={"efficiency": efficiency, "batch_size": bs})
