"""Is this machine steady enough for efficiency figures? Times the efficiency evaluators' host probe
(small matmuls through Python, like a tiny model's forward) and a 256² GEMM in short windows, one
thread, for a while, and prints how far their speed moves and how long its spells last.

On a dedicated machine both stay within a few percent. On a shared VM (this project's 2-vCPU
development machine) they move in spells of seconds that can outlast an efficiency run, which no
dispersion measured inside one run can cover: run this before reading run-to-run differences.

    .venv/bin/python benchmarks/host_drift.py [--seconds 60] [--window 0.25]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def windows(fn, seconds: float, window: float) -> list[float]:
    """Calls of fn per second in consecutive windows of `window` seconds."""
    out, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        started, calls = time.perf_counter(), 0
        while time.perf_counter() - started < window:
            fn()
            calls += 1
        out.append(calls / (time.perf_counter() - started))
    return out


def spells(rates: list[float], threshold: float) -> list[int]:
    """Lengths (in windows) of the runs of consecutive windows slower than `threshold`."""
    lengths, current = [], 0
    for r in rates:
        if r < threshold:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths + ([current] if current else [])


def report(name: str, rates: list[float], window: float) -> None:
    ordered = sorted(rates)
    top = ordered[int(len(ordered) * 0.9)]
    slow = spells(rates, 0.85 * top)
    print(f"{name}: {len(rates)} windows of {window} s; speed relative to the p90 window: "
          f"min {ordered[0] / top:.2f}, p10 {ordered[len(ordered) // 10] / top:.2f}, "
          f"median {statistics.median(rates) / top:.2f}")
    print(f"  slow spells (below 0.85 of p90): {len(slow)}, longest {max(slow, default=0) * window:.1f} s, "
          f"{sum(slow) * window:.1f} s in all")
    print("  trace (relative speed per window): " + " ".join(f"{r / top:.2f}" for r in rates[:80])
          + (" …" if len(rates) > 80 else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to time each workload")
    parser.add_argument("--window", type=float, default=0.25, help="window length in seconds")
    args = parser.parse_args()
    import torch

    from evaluators.efficiency.runtime import HostProbe
    torch.set_num_threads(1)
    probe = HostProbe("cpu", torch, calls=1)
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    report("host probe (evaluators.efficiency.runtime.HostProbe)",
           windows(probe.workload, args.seconds, args.window), args.window)
    report("256² GEMM", windows(lambda: a @ b, args.seconds, args.window), args.window)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
