"""Upload memory: the API's peak RSS while it receives a 1 GiB checkpoint, beside a 16 MiB one.

The upload is streamed to disk, so the API's memory should not grow with the upload's size.
Runs the real API (uvicorn) on loopback against the PostgreSQL/Redis of DATABASE_URL/REDIS_URL
(embedded ones when unset) and samples its RSS every 20 ms. Prints the figures.

    .venv/bin/python benchmarks/upload_memory.py [--gib 1]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._services import setup_services  # noqa: E402


def big_checkpoint(base: Path, out: Path, weight_bytes: int) -> Path:
    """An uncompressed tar of a valid model folder plus one large safetensors file of zeros."""
    n = weight_bytes // 4
    header = json.dumps({"extra.weight": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    weights = out.with_suffix(".safetensors")
    with open(weights, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + n * 4)  # sparse zeros: cheap to make, real bytes to send
    with tarfile.open(out, "w") as tar:
        for path in sorted(base.iterdir()):
            tar.add(path, arcname=path.name)
        tar.add(weights, arcname="extra.safetensors")
    weights.unlink()
    return out


def upload_peak_rss(url: str, token: str, archive: Path, api_pid: int) -> tuple[int, int, float]:
    proc = psutil.Process(api_pid)
    baseline, peak, done = proc.memory_info().rss, 0, threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.02)
    sampler = threading.Thread(target=sample)
    sampler.start()

    def chunks():
        with open(archive, "rb") as f:
            while block := f.read(1 << 20):
                yield block
    started = time.monotonic()
    response = httpx.post(f"{url}/api/v1/checkpoints", params={"family": "causal-lm"}, content=chunks(),
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
                          timeout=600)
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    assert response.status_code in (200, 201), response.text
    return baseline, peak, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="evb-upload-"))
    setup_services(work, "evalboard_bench_upload")
    from core.crud import create_token, create_user
    from core.db import session_scope
    from evaluators.demo_models.causal_lm import build_causal_lm
    with session_scope() as s:
        token = create_token(session=s, user=create_user(session=s, name="bench"))
    base = build_causal_lm(work / "base")
    port = 8790
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)], cwd=ROOT,
                           env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        rows = []
        for label, size in (("16 MiB", 16 << 20), (f"{args.gib:g} GiB", int(args.gib * (1 << 30)))):
            archive = big_checkpoint(base, work / f"{size}.tar", size)
            baseline, peak, elapsed = upload_peak_rss(url, token, archive, api.pid)
            rows.append((label, archive.stat().st_size, baseline, peak, elapsed))
            archive.unlink()
    finally:
        api.terminate()
        api.wait(10)
    print(f"API process RSS while uploading (sampled every 20 ms); machine: {os.cpu_count()} CPUs")
    for label, size, baseline, peak, elapsed in rows:
        print(f"  {label:>8} archive ({size / 2**20:,.0f} MiB): RSS before {baseline / 2**20:.0f} MiB, "
              f"peak {peak / 2**20:.0f} MiB (+{(peak - baseline) / 2**20:.0f} MiB), "
              f"{size / 2**20 / elapsed:.0f} MiB/s")


if __name__ == "__main__":
    main()
