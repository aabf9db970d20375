"""How long a newcomer waits after `make run`: `evalboard up` from an empty data folder (embedded
PostgreSQL and Redis, demo models built from code), timed to the first ranked row on
GET /leaderboard, to the full demo board (every demo model ranked), and to the Efficiency page's
points (GET /leaderboard/efficiency). The README's figures come from here.

    .venv/bin/python benchmarks/demo_time.py [--limit-s 1500]

Prints one JSON line; the host's load average is part of it, since on a shared machine it is most
of the spread between runs.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from cli.demo import DEMO_CAUSAL_LMS, DEMO_MEASURED
    from evaluators.demo_models.clip import DEMO_CLIPS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-s", type=float, default=1500)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="evb-demo-"))  # short: the embedded servers' sockets live here
    api_port, board_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "API_URL")}
    env.update(DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    started, marks, loads = time.monotonic(), {}, []
    up = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--api-port", str(api_port),
                           "--board-port", str(board_port)], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        while time.monotonic() - started < args.limit_s and up.poll() is None:
            time.sleep(2)
            loads.append(os.getloadavg()[0])
            try:
                rows = [r for family in ("causal-lm", "clip") for r in
                        httpx.get(f"{api}/leaderboard", params={"family": family}, timeout=10).json()["rows"]]
                points = httpx.get(f"{api}/leaderboard/efficiency", timeout=10).json()["points"]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            now = round(time.monotonic() - started, 1)
            ranked = {r["model"] for r in rows if r["ranked"] and r["overall"] is not None}
            if ranked:
                marks.setdefault("first_ranked_row_s", now)
            if set(DEMO_CAUSAL_LMS) <= ranked:
                marks.setdefault("language_board_s", now)
            if set(DEMO_CAUSAL_LMS) | set(DEMO_CLIPS) <= ranked:
                marks.setdefault("full_board_s", now)
            if {p["model"] for p in points} >= set(DEMO_MEASURED):
                marks.setdefault("efficiency_points_s", now)
            if "full_board_s" in marks and "efficiency_points_s" in marks:
                break
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)
    marks.update(load_avg_1m_mean=round(sum(loads) / max(len(loads), 1), 2), cpus=os.cpu_count())
    print(json.dumps(marks))


if __name__ == "__main__":
    main()
