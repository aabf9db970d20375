"""Pure arithmetic of the efficiency figures: no torch, no clocks, so every formula is testable
on synthetic timings.

Conventions: times in seconds in, figures in the unit their name says out (`_ms`, `_s`,
`tokens/s`); TFLOPS are 10^12 FLOP/s; MFU is a fraction in [0, 1] (not a percentage).
"""
import math
from collections.abc import Callable, Sequence

from evaluators.base import MetricValue
from evaluators.precision import dtype_key


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation between closest ranks (numpy's default),
    so p50 of an even count is the mean of the two middle values."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0–100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def stderr_of_mean(values: Sequence[float]) -> float | None:
    """Sample standard deviation / √n; None for a single value (no dispersion to speak of)."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def summarize(values: Sequence[float]) -> dict:
    """Median with min/max, the tail percentiles and the standard error: the dispersion every
    efficiency figure carries."""
    return {"n": len(values), "median": median(values), "min": min(values), "max": max(values),
            "p50": percentile(values, 50), "p90": percentile(values, 90), "p99": percentile(values, 99),
            "mean": sum(values) / len(values), "stderr": stderr_of_mean(values)}


def effective_sample_size(series: Sequence[float]) -> float:
    """How many independent values a time-ordered series is worth: n / (1 + 2·Σ ρ_k), summing the
    lag-k autocorrelations ρ_k while consecutive pairs (ρ_{2j} + ρ_{2j+1}) stay positive (Geyer's
    initial positive sequence). n for an uncorrelated series, less where neighbours move together;
    never below 1 and never above n."""
    n = len(series)
    if n < 3:
        return float(n)
    mean = sum(series) / n
    dev = [v - mean for v in series]
    var = sum(d * d for d in dev) / n
    if var == 0:
        return float(n)

    def rho(k: int) -> float:
        return sum(dev[i] * dev[i + k] for i in range(n - k)) / n / var

    total, k = 0.0, 1
    while k + 1 < n:
        pair = rho(k) + rho(k + 1)
        if pair <= 0:
            break
        total += pair
        k += 2
    return min(float(n), max(1.0, n / (1.0 + 2.0 * total)))


def summarize_blocks(blocks: Sequence[Sequence[float]]) -> dict:
    """The summary of trials measured in blocks spread over a run, blocks in time order
    (runtime.interleaved_blocks).

    Median, min, max and percentiles are over all trials pooled. The standard error is taken
    between the blocks' medians, counted as `effective_blocks` independent values: trials within
    one block see the host at one moment, and on a shared machine its speed moves in spells of
    seconds, so neither the trials' scatter nor blocks taken as independent say how far another
    moment's figure can be. With a single block it falls back to the trials' own."""
    blocks = [list(b) for b in blocks if len(b)]
    if not blocks:
        raise ValueError("no trials to summarise")
    out = summarize([v for block in blocks for v in block])
    medians = [median(block) for block in blocks]
    out.update(blocks=len(medians), block_medians=medians, stderr_method="between trials")
    if len(medians) > 1:
        ess = effective_sample_size(medians)  # sd / √ess, i.e. the plain stderr rescaled from n to ess
        out.update(stderr=stderr_of_mean(medians) * math.sqrt(len(medians) / ess), effective_blocks=ess,
                   stderr_method="between block medians, autocorrelation-corrected")
    return out


def rate(count: float, seconds: float) -> float:
    """Items (tokens, samples) per second."""
    if seconds <= 0:
        raise ValueError(f"a rate needs a positive duration, got {seconds}")
    return count / seconds


def ttft_tpot(step_seconds: Sequence[float]) -> tuple[float, float | None]:
    """Time to first token and time per output token from the per-step timings of one greedy
    generation: step 0 is the prefill that yields the first token; each later step yields one more
    token (per sequence), so TPOT is their mean. None when only one token was generated."""
    if not step_seconds:
        raise ValueError("no generation steps")
    rest = step_seconds[1:]
    return step_seconds[0], (sum(rest) / len(rest) if rest else None)


def flops_per_token(params: int, *, n_layer: int = 0, context: int = 0, d_model: int = 0) -> float:
    """Forward FLOPs per token (Kaplan et al. 2020): 2·N for the weight matmuls, plus
    2·n_layer·context·d_model for attention scores and the weighted sum over the context
    (0 when the shape is not given). Embedding lookups are counted in N, a slight overestimate
    for small models whose embedding dominates; we state it rather than guess per architecture."""
    return 2.0 * params + 2.0 * n_layer * context * d_model


def training_flops_per_s(params: int, tokens_per_s: float) -> float:
    """Forward + backward ≈ 3 × forward, so 6·N FLOPs per trained token (attention term left out,
    as in the usual MFU definition of PaLM's appendix)."""
    return 6.0 * params * tokens_per_s


def mfu(achieved_flops_per_s: float, peak_tflops: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the peak; None without a known peak."""
    if not peak_tflops or peak_tflops <= 0:
        return None
    return achieved_flops_per_s / (peak_tflops * 1e12)


# Vendors' dense (no structured sparsity) peaks in TFLOPS by dtype; fp32 is plain FP32, not TF32.
# Ordered so the more specific name matches first ("H100 PCIe" before "H100").
NOMINAL_PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    ("H200", {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0}),
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "fp16": 362.0, "fp32": 91.6}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "fp32": 30.3}),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "fp32": 31.2}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
]

def nominal_peak_tflops(device_name: str, precision: str) -> float | None:
    """The table's peak for a device name (as torch reports it) and precision; None for CPUs and
    unknown chips, so MFU against a nominal peak is only ever shown where the peak is known."""
    key = dtype_key(precision)
    for fragment, peaks in NOMINAL_PEAK_TFLOPS:
        if fragment.lower() in device_name.lower():
            return peaks.get(key)
    return None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def metric_builder(primary_metric: str | None, default_n: int | None = 1) -> Callable[..., MetricValue]:
    """`metric(name, value, unit, hib=…, stderr=…, n=…)`: one efficiency figure as a MetricValue; it is
    the primary when the task names it so (or `primary=True`)."""
    def metric(name: str, value: float, unit: str, *, hib: bool = True, stderr: float | None = None,
               n: int | None = None, primary: bool = False) -> MetricValue:
        return MetricValue(name=name, value=float(value), stderr=stderr, n=default_n if n is None else n,
                           higher_is_better=hib, primary=primary or primary_metric == name, unit=unit)
    return metric
