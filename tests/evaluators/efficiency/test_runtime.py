"""The measuring instruments; the CUDA branches run against a stand-in torch (no GPU here)."""
import sys
import types

import pytest

from evaluators.efficiency import runtime as rt


class FakeEvent:
    """A CUDA event whose clock is set by the test: elapsed_time returns milliseconds."""
    clock_ms = 0.0

    def __init__(self, enable_timing=False):
        assert enable_timing
        self.at, self.synced = None, False

    def record(self):
        self.at = FakeEvent.clock_ms

    def synchronize(self):
        self.synced = True

    def elapsed_time(self, other):
        return other.at - self.at


def fake_torch(**cuda_attrs):
    cuda = types.SimpleNamespace(Event=FakeEvent, **cuda_attrs)
    return types.SimpleNamespace(cuda=cuda, device=lambda d: types.SimpleNamespace(index=int(d.split(":")[1])))


def test_cpu_device_takes_the_wall_clock_and_cuda_takes_events():
    import torch
    assert isinstance(rt.timer_for("cpu", torch), rt.WallTimer)
    timer = rt.timer_for("cuda:0", fake_torch())  # selected without touching CUDA
    assert isinstance(timer, rt.CudaEventTimer) and timer.kind == "cuda_events"


def test_cuda_event_timer_reports_event_time_in_seconds():
    timer = rt.CudaEventTimer(fake_torch())

    def work():
        FakeEvent.clock_ms += 12.5  # the kernels took 12.5 ms on the stream
        return "out"
    assert timer.time(work) == ("out", pytest.approx(0.0125))


def test_cuda_memory_is_max_allocated_after_a_reset():
    calls = []
    torch = fake_torch(reset_peak_memory_stats=lambda d: calls.append(("reset", d)),
                       max_memory_allocated=lambda d: 3 * 2**30, max_memory_reserved=lambda d: 4 * 2**30)
    with rt.track_peak_memory("cuda:0", torch) as reading:
        calls.append("work")
    assert calls == [("reset", "cuda:0"), "work"]
    assert reading[0].peak_bytes == 3 * 2**30 and reading[0].method == "cuda_max_memory_allocated"
    assert reading[0].extra["cuda_max_memory_reserved"] == 4 * 2**30


def test_cpu_memory_sees_an_allocation_inside_the_block():
    import torch
    with rt.track_peak_memory("cpu", torch) as before:
        pass
    with rt.track_peak_memory("cpu", torch) as during:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        import time
        time.sleep(0.05)
        del block
    assert during[0].method == "rss_sampled_peak" and during[0].extra["ru_maxrss_bytes"] > 0
    assert during[0].peak_bytes >= before[0].peak_bytes + 32 * 2**20


def test_energy_comes_from_nvml_on_cuda_only(monkeypatch):
    counter = {"mj": 1_000_000}
    nvml = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
                                 nvmlDeviceGetTotalEnergyConsumption=lambda h: counter["mj"])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    meter = rt.EnergyMeter("cuda:1", fake_torch())
    assert meter.handle == "gpu1"
    meter.start()
    counter["mj"] += 2500  # 2.5 J
    assert meter.joules() == pytest.approx(2.5)
    assert rt.EnergyMeter("cpu", None).joules() is None
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not importable: no energy, no error
    assert rt.EnergyMeter("cuda:0", fake_torch()).joules() is None


def test_threads_are_pinned_for_the_block_and_restored():
    import torch
    before = torch.get_num_threads()
    with rt.pinned_threads(torch, 1) as used:
        assert used == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_flag_gems_is_optional_and_refused_off_cuda(monkeypatch):
    assert rt.maybe_flag_gems(False, "cpu")[1] == "torch"
    with pytest.raises(ValueError, match="only run on CUDA"):
        rt.maybe_flag_gems(True, "cpu")
    monkeypatch.setitem(sys.modules, "flag_gems", None)
    with pytest.raises(ValueError, match="not installed"):
        rt.maybe_flag_gems(True, "cuda:0")


def test_cpu_peaks_are_measured_and_have_no_nominal_value():
    import torch
    peak = rt.peaks("cpu", "float32", torch, gemm_n=128)
    assert peak["measured_tflops"] > 0 and peak["nominal_tflops"] is None and peak["dtype"] == "fp32"


PROFILE = {"id": 3, "device_name": "AMD EPYC", "versions": {"threads": 4},
           "measured": {"gemm_tflops_fp32": 0.8, "gemm_tflops_bf16": 0.3, "gemm_n": 512}}


@pytest.mark.parametrize("profile, kwargs, expected, why", [
    (PROFILE, {}, 0.8, "worker's hardware profile"),
    (PROFILE, {"dtype_key": "bf16"}, 0.3, "worker's hardware profile"),
    (None, {}, None, "no worker hardware profile"),
    (PROFILE, {"device_name": "Intel Xeon"}, None, "not of this device"),
    (PROFILE, {"threads": 1}, None, "measured with 4 threads, this run uses 1"),
    (PROFILE, {"dtype_key": "fp16"}, None, "no fp16 GEMM figure"),
    # On a GPU the thread count is no part of the peak.
    ({**PROFILE, "device_name": "NVIDIA H200", "versions": {"cuda": "13.0"}},
     {"device_name": "NVIDIA H200", "cuda": True, "threads": 1}, 0.8, "worker's hardware profile"),
])
def test_the_workers_profile_peak_applies_only_to_the_same_device_threads_and_dtype(profile, kwargs, expected, why):
    args = {"device_name": "AMD EPYC", "dtype_key": "fp32", "cuda": False, "threads": 4, **kwargs}
    value, reason = rt.profile_peak(profile, **args)
    assert value == expected and why in reason


def test_peaks_take_the_profile_figure_and_say_so():
    import torch
    name = rt.device_name("cpu", torch)
    profile = {**PROFILE, "device_name": name, "versions": {"threads": torch.get_num_threads()}}
    peak = rt.peaks("cpu", "float32", torch, profile=profile)
    assert (peak["measured_tflops"], peak["measured_source"], peak["profile_id"]) == (0.8, "worker_profile", 3)
    peak = rt.peaks("cpu", "float16", torch, gemm_n=64, profile=profile)  # no fp16 figure: timed here
    assert peak["measured_source"] == "evaluator_gemm" and peak["gemm_n"] == 64 and peak["measured_tflops"] > 0


def test_flops_count_attention_through_the_fused_paths_and_restore_them():
    import torch
    attention = torch.nn.MultiheadAttention(16, 2, batch_first=True).eval()
    x = torch.randn(1, 10, 16)
    flops = rt.count_flops(torch, lambda: attention(x, x, x, need_weights=False))
    # QKV and output projections (4 · 16² per token) and scores + weighted sum (2 · 10² · 16), 2 FLOPs a MAC.
    assert flops == 2 * (10 * 4 * 16 * 16 + 2 * 10 * 10 * 16)
    assert torch.backends.mha.get_fastpath_enabled()


def test_warm_up_runs_the_count_and_then_until_the_time_floor():
    import time

    import torch

    from evaluators.efficiency.runtime import warm_up

    calls = []
    assert warm_up(lambda: calls.append(1), count=3, min_seconds=0.0, device="cpu", torch=torch) == 3
    started = time.perf_counter()
    n = warm_up(lambda: time.sleep(0.01), count=2, min_seconds=0.1, device="cpu", torch=torch)
    assert time.perf_counter() - started >= 0.1 and n >= 5
    assert warm_up(lambda: None, count=1, min_seconds=60, device="cpu", torch=torch, max_calls=50) == 50


def test_interleaved_blocks_rotate_the_points_and_fill_each_block():
    import time

    import torch

    from evaluators.efficiency.runtime import interleaved_blocks

    log = []

    def trial(name, seconds=0.0):
        def run():
            log.append(name)
            time.sleep(seconds)
            return name
        return run
    blocks = interleaved_blocks([trial("a"), trial("b"), trial("c")], rounds=3, min_block_s=0.0, min_trials=2,
                                device="cpu", torch=torch)
    # Each block: one settling call, then min_trials timed; round r starts at point r.
    assert "".join(log) == "aaabbbccc" + "bbbcccaaa" + "cccaaabbb"
    assert blocks == [[["a", "a"]] * 3, [["b", "b"]] * 3, [["c", "c"]] * 3]
    started = time.perf_counter()
    (slow,) = interleaved_blocks([trial("s", 0.01)], rounds=2, min_block_s=0.05, min_trials=1, device="cpu",
                                 torch=torch)
    assert len(slow) == 2 and all(len(b) >= 5 for b in slow) and time.perf_counter() - started >= 0.1
    with pytest.raises(ValueError):
        interleaved_blocks([trial("a")], rounds=0, min_block_s=0.0, min_trials=1, device="cpu", torch=torch)


def test_the_host_probe_times_the_cpu_and_stays_out_of_the_way_on_cuda():
    import torch

    from evaluators.efficiency.runtime import HostProbe
    probe = HostProbe("cpu", torch, calls=5)
    assert probe.summary() is None
    probe.measure()
    probe.measure()
    summary = probe.summary()
    assert len(summary["per_round_us"]) == 2 and summary["min_us"] > 0 and "µs per call" in summary["method"]
    on_gpu = HostProbe("cuda:0", fake_torch())
    on_gpu.measure()
    assert on_gpu.summary() is None
