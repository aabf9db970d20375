"""`evalboard up` as a new user runs it (`make run`), driven without a browser."""
import os
import signal
import subprocess
import sys
import time

import httpx
from streamlit.testing.v1 import AppTest

from cli.demo import DEMO_CAUSAL_LMS
from tests.conftest import REDIS_URL, ROOT, create_database, drop_database
from tests.leaderboard.test_app import _free_port

UP_DB = f"evalboard_up_{os.getpid()}"


def _other_redis_db(url: str, db: int = 14) -> str:
    return f"{url}?db={db}" if url.startswith("unix://") else url.rsplit("/", 1)[0] + f"/{db}"


def test_up_serves_api_worker_and_board_with_scored_demo_models(tmp_path):
    from redis import Redis
    redis_url = _other_redis_db(REDIS_URL)
    Redis.from_url(redis_url).flushdb()
    database_url = create_database(UP_DB)
    api_port, board_port = _free_port(), _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path)}
    up = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--api-port", str(api_port),
                           "--board-port", str(board_port)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        board, deadline = {"rows": []}, time.monotonic() + 480
        while time.monotonic() < deadline:
            assert up.poll() is None, up.stdout.read()
            try:
                board = httpx.get(f"{api}/leaderboard", timeout=5).json()
            except httpx.HTTPError:
                pass
            if len(board["rows"]) == len(DEMO_CAUSAL_LMS) and all(len(r["tasks"]) == 2 for r in board["rows"]):
                break
            time.sleep(3)
        assert sorted(r["model"] for r in board["rows"]) == sorted(DEMO_CAUSAL_LMS), board
        assert all(r["overall"] is not None for r in board["rows"])

        assert httpx.get(f"http://127.0.0.1:{board_port}/_stcore/health", timeout=10).text == "ok"
        os.environ["EVALBOARD_API_URL"] = f"http://127.0.0.1:{api_port}"
        try:
            page = AppTest.from_file(str(ROOT / "leaderboard" / "app.py"), default_timeout=30).run()
        finally:
            del os.environ["EVALBOARD_API_URL"]
        assert sorted(page.dataframe[0].value["model"]) == sorted(DEMO_CAUSAL_LMS)
    finally:
        up.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output = up.communicate(timeout=60)[0]
        drop_database(UP_DB)
    assert up.returncode == 0, output
    assert f"http://127.0.0.1:{board_port}" in output and "/docs" in output
    assert "stopping" in output
