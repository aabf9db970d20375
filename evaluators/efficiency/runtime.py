"""The measuring instruments the efficiency evaluators share: timers, memory and energy meters,
thread pinning and the peak FLOP/s that MFU divides by.

Everything CUDA-specific sits behind `is_cuda(device)`, and takes the torch module as an
argument, so the GPU branches are unit-tested with a stand-in on machines without a GPU.
"""
import contextlib
import resource
import sys
import threading
import time
from dataclasses import dataclass, field

from evaluators.efficiency.host import cpu_name, gemm_size, measure_gemm_tflops
from evaluators.efficiency.metrics import median, nominal_peak_tflops
from evaluators.precision import dtype_key, torch_dtype


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


class WallTimer:
    """CPU timing: perf_counter around the call (CPU ops are synchronous)."""
    kind = "perf_counter"

    def time(self, fn):
        start = time.perf_counter()
        result = fn()
        return result, time.perf_counter() - start


class CudaEventTimer:
    """GPU timing with CUDA events: they time the kernels on the stream, not the Python launching
    them; synchronising on the end event makes the result the finished work."""
    kind = "cuda_events"

    def __init__(self, torch):
        self.torch = torch

    def time(self, fn):
        start = self.torch.cuda.Event(enable_timing=True)
        end = self.torch.cuda.Event(enable_timing=True)
        start.record()
        result = fn()
        end.record()
        end.synchronize()
        return result, start.elapsed_time(end) / 1000.0  # elapsed_time is in milliseconds


def timer_for(device: str, torch):
    return CudaEventTimer(torch) if is_cuda(device) else WallTimer()


def synchronize(device: str, torch) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


def warm_up(fn, *, count: int, min_seconds: float, device: str, torch, max_calls: int = 10_000) -> int:
    """Call fn at least `count` times and for at least `min_seconds`; return how many calls it took.

    A fixed count is not enough on a CPU: the first point of the first run in a process measured
    30% slower than the same point a second later (allocator and caches still settling), which
    broke run-to-run agreement. A time floor lets a fast model run more warm-up calls.
    """
    started, calls = time.perf_counter(), 0
    while calls < max_calls and (calls < count or time.perf_counter() - started < min_seconds):
        fn()
        calls += 1
        if calls % 8 == 0:
            synchronize(device, torch)  # on a GPU, time the work done, not the launches queued
    synchronize(device, torch)
    return calls


def interleaved_blocks(trials, *, rounds: int, min_block_s: float, min_trials: int, device: str,
                       torch, on_round=lambda done, rounds: None) -> list[list[list]]:
    """Runs each grid point's `trial()` in `rounds` blocks, interleaved across the points; returns,
    per point, its blocks, each the list of what its trials returned.

    Round r visits every point once (starting one point further each round, so no point always
    follows the same one) and runs its trial until `min_block_s` has passed and at least
    `min_trials` trials ran, after one untimed call (the caches were the previous point's).
    `on_round(r, rounds)` is called before each round (progress reporting).

    Why blocks: on a shared host the machine's speed moves over seconds. On this project's 2-vCPU
    VM, batch-1 latency of the tiny CLIP moved between 0.49 and 0.84 ms from one second to the next,
    while 15 back-to-back trials lasted 8 ms: they saw one speed, their standard error was 3%, and
    the next run differed by 90%. Blocks spread over the whole run, with the standard error taken
    between block medians (metrics.summarize_blocks), cover the variation over the time it spans.
    """
    if rounds < 1 or min_trials < 1 or min_block_s < 0:
        raise ValueError("interleaved blocks need rounds ≥ 1, min_trials ≥ 1 and min_block_s ≥ 0")
    blocks: list[list[list]] = [[] for _ in trials]
    for r in range(rounds):
        on_round(r, rounds)
        for k in range(len(trials)):
            i = (r + k) % len(trials)
            trials[i]()
            synchronize(device, torch)
            results, started = [], time.perf_counter()
            while len(results) < min_trials or time.perf_counter() - started < min_block_s:
                results.append(trials[i]())
            blocks[i].append(results)
    return blocks


class HostProbe:
    """A fixed small CPU workload, timed once per round: how fast the host ran at that moment.

    Recorded beside the figures (provenance "host_probe"), never used to correct them: when two
    runs disagree, it tells whether the host itself was slower during one of them. Small matmuls
    and tanh through Python, like a tiny model's forward, so it moves with the spells that move
    those figures (a large GEMM barely does). Inert on CUDA devices, where the host is not what is
    being measured."""

    method = "4 × (64² matmul + tanh) on a 1×64 input, 50 calls, µs per call"

    def __init__(self, device: str, torch, calls: int = 50):
        self.torch, self.calls, self.active, self.samples_us = torch, calls, not is_cuda(device), []
        if self.active:
            generator = torch.Generator().manual_seed(0)
            self.x = torch.randn(1, 64, generator=generator)
            self.weights = [torch.randn(64, 64, generator=generator) / 8 for _ in range(4)]

    def workload(self) -> None:
        """`calls` calls of the probe's work, untimed (benchmarks/host_drift.py times it in windows)."""
        with self.torch.inference_mode():
            for _ in range(self.calls):
                y = self.x
                for w in self.weights:
                    y = self.torch.tanh(y @ w)

    def measure(self) -> None:
        if not self.active:
            return
        started = time.perf_counter()
        self.workload()
        self.samples_us.append((time.perf_counter() - started) / self.calls * 1e6)

    def on_round(self, progress):
        """The evaluators' per-round hook: time the probe, then report progress ("round 3/8")."""
        def hook(r: int, rounds: int) -> None:
            self.measure()
            progress(f"round {r + 1}/{rounds}", r / rounds)
        return hook

    def summary(self) -> dict | None:
        if not self.samples_us:
            return None
        return {"method": self.method, "per_round_us": [round(v, 2) for v in self.samples_us],
                "median_us": round(median(self.samples_us), 2),
                "min_us": round(min(self.samples_us), 2), "max_us": round(max(self.samples_us), 2)}


class _RssSampler(threading.Thread):
    """Samples this process's RSS every few ms: ru_maxrss alone is the lifetime high-water mark
    of a long-lived evaluation child (it includes loading and earlier runs)."""

    def __init__(self, every_s: float = 0.005):
        super().__init__(daemon=True, name="rss-sampler")
        import psutil
        self.process, self.every_s, self.peak = psutil.Process(), every_s, 0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.stopped.wait(self.every_s)


def ru_maxrss_bytes() -> int:
    # Linux reports kilobytes, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass
class MemoryReading:
    peak_bytes: int
    method: str
    extra: dict = field(default_factory=dict)


@contextlib.contextmanager
def track_peak_memory(device: str, torch):
    """Yields a list that holds one MemoryReading after the block: CUDA max allocated on GPU,
    the sampled RSS peak (with ru_maxrss beside it) on CPU."""
    out: list[MemoryReading] = []
    if is_cuda(device):
        torch.cuda.reset_peak_memory_stats(device)
        yield out
        out.append(MemoryReading(int(torch.cuda.max_memory_allocated(device)), "cuda_max_memory_allocated",
                                 {"cuda_max_memory_reserved": int(torch.cuda.max_memory_reserved(device))}))
        return
    sampler = _RssSampler()
    sampler.start()
    try:
        yield out
    finally:
        sampler.stopped.set()
        sampler.join()
    out.append(MemoryReading(max(sampler.peak, sampler.process.memory_info().rss), "rss_sampled_peak",
                             {"ru_maxrss_bytes": ru_maxrss_bytes()}))


class EnergyMeter:
    """Joules used by the GPU from NVML's total-energy counter; inert (None) on CPU or when pynvml
    is not importable, so the CPU path never needs it."""

    def __init__(self, device: str, torch):
        self.handle, self.nvml, self.start_mj = None, None, None
        if not is_cuda(device):
            return
        try:
            import pynvml
            pynvml.nvmlInit()
            index = torch.device(device).index or 0
            self.handle, self.nvml = pynvml.nvmlDeviceGetHandleByIndex(index), pynvml
        except Exception:  # noqa: BLE001 — no pynvml, no driver support: energy is simply not reported
            self.handle = None

    def start(self) -> None:
        if self.handle is not None:
            self.start_mj = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)

    def joules(self) -> float | None:
        if self.handle is None or self.start_mj is None:
            return None
        return (self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - self.start_mj) / 1000.0


@contextlib.contextmanager
def pinned_threads(torch, threads: int | None):
    """Pins torch's intra-op threads for the block and restores them after; yields the count used."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def device_name(device: str, torch) -> str:
    if is_cuda(device):
        return torch.cuda.get_device_name(torch.device(device).index or 0)
    return cpu_name()


def profile_peak(profile: dict | None, *, device_name: str, dtype_key: str, cuda: bool,
                 threads: int) -> tuple[float | None, str]:
    """The worker's own measured GEMM peak for this dtype, with why it applies or not.

    The worker measures its hardware profile once at start (runners/hardware.py), by the same
    method as `peaks`. It stands for this run only on the same device, and on a CPU only at the
    same thread count: a GEMM on all cores is no peak for a run pinned to one."""
    if not profile:
        return None, "no worker hardware profile was passed"
    if profile.get("device_name") != device_name:
        return None, f"the worker profile is of {profile.get('device_name')!r}, not of this device"
    profile_threads = (profile.get("versions") or {}).get("threads")
    if not cuda and profile_threads != threads:
        return None, f"the worker profile measured with {profile_threads} threads, this run uses {threads}"
    value = (profile.get("measured") or {}).get(f"gemm_tflops_{dtype_key}")
    if not value or value <= 0:
        return None, f"the worker profile has no {dtype_key} GEMM figure"
    return float(value), "the worker's hardware profile, measured at its start"


def peaks(device: str, precision: str, torch, gemm_n: int | None = None, profile: dict | None = None) -> dict:
    """The peaks MFU is measured against: the measured one — the worker's hardware profile where it
    applies (see profile_peak), else a GEMM timed here, now, on the evaluator's device, dtype and
    threads by the same method — and the table's nominal peak. `measured_source` says which."""
    name, key, cuda = device_name(device, torch), dtype_key(precision), is_cuda(device)
    from_profile, why = profile_peak(profile, device_name=name, dtype_key=key, cuda=cuda,
                                     threads=torch.get_num_threads())
    out = {"device_name": name, "dtype": key,
           "nominal_tflops": nominal_peak_tflops(name, precision) if cuda else None}
    if from_profile is not None:
        return {**out, "measured_tflops": from_profile, "measured_source": "worker_profile",
                "profile_id": profile.get("id"), "gemm_n": (profile.get("measured") or {}).get("gemm_n"),
                "why": why}
    n = gemm_n or gemm_size(device)
    return {**out, "measured_tflops": round(measure_gemm_tflops(torch, device, torch_dtype(precision, torch), n=n), 4),
            "measured_source": "evaluator_gemm", "gemm_n": n, "why": why}


def count_flops(torch, fn) -> int:
    """FLOPs of one call, counted by torch's FlopCounterMode (matmuls, convolutions, attention).

    The fused paths it cannot see are switched off while counting: nn.MultiheadAttention's
    inference fast path and the fused CPU SDPA kernels would otherwise drop the attention out of
    the count. The math is the same, so the count is that of the timed (fused) calls."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return int(counter.get_total_flops())


def maybe_flag_gems(enabled: bool, device: str):
    """FlagGems kernels as a context, only on CUDA and only if `flag_gems` imports; never installed
    by us. Returns (context, label) — label goes into the provenance as the kernel configuration."""
    if not enabled:
        return contextlib.nullcontext(), "torch"
    if not is_cuda(device):
        raise ValueError("flag_gems kernels were asked for, but they only run on CUDA devices")
    try:
        import flag_gems
    except ImportError as exc:
        raise ValueError("flag_gems kernels were asked for, but flag_gems is not installed on this worker") from exc
    return flag_gems.use_gems(), f"flag_gems {getattr(flag_gems, '__version__', '?')}"


def checked_args(evaluator: str, defaults: dict, args: dict) -> dict:
    """The defaults overlaid with a suite's args; an arg the evaluator does not know is refused by name."""
    unknown = set(args) - set(defaults)
    if unknown:
        raise ValueError(f"unknown {evaluator} args: {', '.join(sorted(unknown))}; known: "
                         f"{', '.join(sorted(defaults))}")
    return {**defaults, **args}


@dataclass
class Measuring:
    """The instruments of one efficiency evaluation, set up the same way by every evaluator (see `measuring`)."""
    device: str
    dtype: str
    timer: object
    threads: int
    memory: list
    peak: dict
    probe: HostProbe
    kernels: str
    energy: EnergyMeter
    started: float
    joules: float | None = None
    """The GPU's energy from energy.start() to the block's end; None on CPU or without NVML."""

    def provenance(self, **figures) -> dict:
        """provenance["efficiency"]: what every efficiency evaluator records of how it measured, then its own."""
        return {"device": self.device, "device_name": self.peak["device_name"], "dtype": self.dtype,
                "threads": None if is_cuda(self.device) else self.threads, "timer": self.timer.kind,
                "kernels": self.kernels, "peak": self.peak,
                "memory": {"method": self.memory[0].method, **self.memory[0].extra},
                "host_probe": self.probe.summary(), "wall_s": round(time.perf_counter() - self.started, 3),
                **figures}


@contextlib.contextmanager
def measuring(device: str, dtype: str, torch, cfg: dict, hardware: dict | None):
    """The shared preamble of the efficiency evaluators: the timer for the device, FlagGems kernels if
    asked (refused before anything runs where they cannot), intra-op threads pinned (CPU), peak memory
    tracked over the block, the peak MFU divides by (the worker's profile where it applies, else timed
    here), a host probe and an energy meter. Yields a Measuring; after the block the device is
    synchronised and the energy read."""
    timer = timer_for(device, torch)
    kernels, kernel_label = maybe_flag_gems(cfg.get("flag_gems", False), device)
    energy = EnergyMeter(device, torch)
    started = time.perf_counter()
    with pinned_threads(torch, None if is_cuda(device) else cfg["threads"]) as threads, \
            track_peak_memory(device, torch) as memory, kernels:
        peak = peaks(device, dtype, torch, cfg["peak_gemm_n"], hardware)
        state = Measuring(device=device, dtype=dtype, timer=timer, threads=threads, memory=memory, peak=peak,
                          probe=HostProbe(device, torch), kernels=kernel_label, energy=energy, started=started)
        yield state
        synchronize(device, torch)
        state.joules = energy.joules()
