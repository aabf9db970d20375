"""Runner benchmark: submit→start latency with an idle worker, and the speed-up of 2 workers over 1.

Both measured in one run, side by side, on a fresh database of the PostgreSQL and Redis named by
DATABASE_URL / REDIS_URL (embedded ones when unset). Prints the figures; asserts nothing.

    .venv/bin/python benchmarks/runners_latency.py [--submissions 20]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._services import setup_services  # noqa: E402


def start_workers(n: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--hardware", "cpu", "--concurrency", str(n)],
                            cwd=ROOT, env=os.environ.copy(), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    import signal
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def variant(base: Path, out: Path, i: int) -> Path:
    shutil.copytree(base, out)
    (out / "README.md").write_text(f"# bench {i}\n\nBenchmark variant {i} of a tiny model.\n")
    return out


def wait_idle_worker(client, auth, folder: Path) -> None:
    """A warm-up submission: the worker has measured its hardware and started its evaluation child."""
    sub = submit(client, auth, folder, "warmup", ["world_facts"])
    wait_finished(client, sub["id"])


def submit(client, auth, folder: Path, name: str, tasks: list[str] | None) -> dict:
    from cli.client import pack_folder
    with tempfile.TemporaryDirectory() as tmp:
        data = pack_folder(folder, Path(tmp) / "m.tar.gz").read_bytes()
    sha = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=data, headers=auth).json()["sha256"]
    body = {"model_name": name, "checkpoint_sha256": sha, "suite": "language-core", "tasks": tasks}
    return client.post("/api/v1/submissions", json=body, headers=auth).json()


def wait_finished(client, submission_id: str, timeout_s: float = 900) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sub = client.get(f"/api/v1/submissions/{submission_id}").json()
        if sub["status"] in ("finished", "failed", "cancelled"):
            return sub
        time.sleep(0.05)
    raise TimeoutError(submission_id)


def run_latency(run_id: str) -> float:
    from core.db import session_scope
    from core.models import Run
    with session_scope() as s:
        run = s.get(Run, run_id)
        return (run.started_at - run.queued_at).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="evb-bench-"))
    setup_services(work, "evalboard_bench")
    from fastapi.testclient import TestClient

    from api.main import app
    from core.catalog import get_suite
    from core.crud import create_token, create_user
    from core.db import session_scope
    from evaluators.demo_models.causal_lm import build_causal_lm
    with session_scope() as s:
        auth = {"Authorization": f"Bearer {create_token(session=s, user=create_user(session=s, name='bench'))}"}
    base = build_causal_lm(work / "base", train_steps=0)
    client = TestClient(app)
    tasks = [t.name for t in get_suite("language-core").tasks]

    # 1. submit→start latency with one idle, warm worker
    one = start_workers(1, work / "workers-1.log")
    try:
        wait_idle_worker(client, auth, variant(base, work / "w1", 0))
        latencies = []
        for i in range(args.submissions):
            sub = submit(client, auth, variant(base, work / f"lat{i}", i + 1), f"lat{i}", ["world_facts"])
            wait_finished(client, sub["id"])
            latencies.append(run_latency(sub["runs"][0]["id"]))
        # 2a. one multi-task submission on 1 worker
        sub = submit(client, auth, variant(base, work / "multi1", 1000), "multi1", None)
        t = time.monotonic()
        wait_finished(client, sub["id"])
        one_worker_s = time.monotonic() - t
    finally:
        stop(one)

    # 2b. the same shape of submission on 2 workers
    two = start_workers(2, work / "workers-2.log")
    try:
        # Two warm-ups at once, so each worker takes one and both start their evaluation child.
        warmups = [submit(client, auth, variant(base, work / f"w{i}", i), f"warm{i}", ["world_facts"])
                   for i in (2000, 2001)]
        for warm in warmups:
            wait_finished(client, warm["id"])
        sub = submit(client, auth, variant(base, work / "multi2", 2002), "multi2", None)
        t = time.monotonic()
        wait_finished(client, sub["id"])
        two_workers_s = time.monotonic() - t
    finally:
        stop(two)

    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    print(f"machine: {os.cpu_count()} CPUs; suite language-core ({len(tasks)} tasks); "
          f"{args.submissions} single-task submissions")
    print(f"submit→start latency (idle warm worker): median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    print(f"multi-task submission wall time: 1 worker {one_worker_s:.2f} s, 2 workers {two_workers_s:.2f} s, "
          f"speed-up {one_worker_s / two_workers_s:.2f}x")


if __name__ == "__main__":
    main()
