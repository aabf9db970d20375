"""The hardware profile a worker measures and records at start (DESIGN §4).

Measured, not looked up: a short GEMM timing per dtype and a memory-copy bandwidth,
beside the device's name, count, memory and library versions.
"""
import os
import platform
import time
from importlib.metadata import version


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def gemm_size(device: str) -> int:
    """The GEMM side that reaches a device's peak: a 512² product is launch overhead on a GPU."""
    return 4096 if device.startswith("cuda") else 512


def measure_gemm_tflops(torch, device: str, dtype, n: int = 512, repeats: int = 5) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.float32).to(dtype)
    b = torch.randn(n, n, device=device, dtype=torch.float32).to(dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step():
        torch.mm(a, b)
        sync()
    return 2 * n**3 / _best_of(step, repeats) / 1e12


def measure_copy_gbs(torch, device: str, mib: int = 64, repeats: int = 5) -> float:
    src = torch.empty(mib * 1024 * 1024 // 4, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step():
        dst.copy_(src)
        sync()
    # A copy reads and writes every byte once.
    return 2 * src.numel() * 4 / _best_of(step, repeats) / 1e9


def measure_profile(device: str = "cpu") -> dict:
    import psutil
    import torch

    from evaluators.devices import primary_device
    device = primary_device(device)  # a list (cuda:0,cuda:1) spreads one model; its first device is measured

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        name, count, memory = props.name, torch.cuda.device_count(), props.total_memory
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        runtime = {"cuda": torch.version.cuda}
    else:
        name, count, memory = _cpu_name(), 1, psutil.virtual_memory().total
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
        runtime = {"threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    n = gemm_size(device)
    measured = {f"gemm_tflops_{k}": round(measure_gemm_tflops(torch, device, v, n=n), 4) for k, v in dtypes.items()}
    measured["gemm_n"] = n
    measured["copy_bandwidth_gbs"] = round(measure_copy_gbs(torch, device), 2)
    versions = {"torch": torch.__version__, "python": platform.python_version(), **runtime}
    for package in ("transformers", "lm_eval", "open_clip_torch", "bitsandbytes", "vllm", "peft"):
        try:
            versions[package] = version(package)
        except Exception:
            pass
    return {"device_name": name, "device_count": count, "memory_bytes": int(memory),
            "versions": versions, "measured": measured}
