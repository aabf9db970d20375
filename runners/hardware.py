"""The hardware profile a worker measures and records at start (DESIGN §4).

Measured, not looked up: a short GEMM timing per dtype and a memory-copy bandwidth,
beside the device's name, count, memory and library versions. The timings are those of
evaluators/efficiency/host.py, so an efficiency evaluator's own peak is measured the same way.
"""
import os
import platform
from importlib.metadata import version

from evaluators.efficiency.host import cpu_name, gemm_size, measure_copy_gbs, measure_gemm_tflops
from evaluators.precision import DTYPE_KEYS, torch_dtype


def measure_profile(device: str = "cpu") -> dict:
    import psutil
    import torch

    from evaluators.devices import primary_device
    device = primary_device(device)  # a list (cuda:0,cuda:1) spreads one model; its first device is measured

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        name, count, memory = props.name, torch.cuda.device_count(), props.total_memory
        precisions = ("float32", "bfloat16", "float16")
        runtime = {"cuda": torch.version.cuda}
    else:
        name, count, memory = cpu_name(), 1, psutil.virtual_memory().total
        precisions = ("float32", "bfloat16")
        runtime = {"threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    n = gemm_size(device)
    measured = {f"gemm_tflops_{DTYPE_KEYS[p]}": round(measure_gemm_tflops(torch, device, torch_dtype(p, torch), n=n), 4)
                for p in precisions}
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
