"""The host's own figures, timed the same way wherever they are needed: the CPU's name, the GEMM
TFLOPS a device reaches in a dtype, and its memory-copy bandwidth.

The worker's hardware profile (runners/hardware.py) and the peak MFU divides by (runtime.peaks) both
time their GEMM here, so the two measure by one method and a profile can stand in for a fresh timing.
"""
import platform
import time


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def best_of(fn, repeats: int) -> float:
    """The fastest of `repeats` timed calls, after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def gemm_size(device: str) -> int:
    """The GEMM side that reaches a device's peak: a 512² product is launch overhead on a GPU."""
    return 4096 if device.startswith("cuda") else 512


def _sync(torch, device: str):
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def measure_gemm_tflops(torch, device: str, dtype, n: int = 512, repeats: int = 5) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.float32).to(dtype)
    b = torch.randn(n, n, device=device, dtype=torch.float32).to(dtype)
    sync = _sync(torch, device)

    def step():
        torch.mm(a, b)
        sync()
    return 2 * n**3 / best_of(step, repeats) / 1e12


def measure_copy_gbs(torch, device: str, mib: int = 64, repeats: int = 5) -> float:
    src = torch.empty(mib * 1024 * 1024 // 4, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    sync = _sync(torch, device)

    def step():
        dst.copy_(src)
        sync()
    # A copy reads and writes every byte once.
    return 2 * src.numel() * 4 / best_of(step, repeats) / 1e9
