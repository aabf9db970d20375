"""README step 1 in a second terminal: commands find the running `evalboard up`, and say in one line
what is wrong (and what fixes it) when nothing runs; `up` serves on loopback only."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from cli.running import read_state, write_state
from tests.conftest import ROOT, create_database, drop_database, free_port

SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "API_URL", "EVALBOARD_API_URL", "EVALBOARD_TOKEN")


def second_terminal(data_dir: Path, **extra: str) -> dict:
    """A fresh shell in the project folder: none of the service variables exported."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    return {**env, "DATA_DIR": str(data_dir), "COLUMNS": "200", **extra}


def evalboard(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode not in (0, None), result
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_token_create_with_nothing_running_says_how_to_start_it(tmp_path):
    result = evalboard("token", "create", "--user", "alice", env=second_terminal(tmp_path))
    assert result.returncode == 1
    assert_one_line(result, "no Evalboard is running", "make run", "DATABASE_URL")


def test_a_state_file_left_by_a_killed_up_is_ignored(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "running.json").write_text(json.dumps({"pid": dead.pid, "database_url": "postgresql://x@/gone"}))
    assert read_state(tmp_path) is None
    assert_one_line(evalboard("token", "create", "--user", "alice", env=second_terminal(tmp_path)),
                    "no Evalboard is running")
    for garbage in ("not json", "[1, 2]", '{"pid": "1"}'):
        (tmp_path / "running.json").write_text(garbage)
        assert read_state(tmp_path) is None


def test_the_state_file_is_private_and_not_written_through_a_planted_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    (tmp_path / f".running.json.{os.getpid()}").symlink_to(target)
    path = write_state(tmp_path, database_url="postgresql://u:secret@h/db", redis_url="redis://h/0",
                       api_url="http://127.0.0.1:1", board_url="http://127.0.0.1:2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert target.read_text() == "untouched"
    assert read_state(tmp_path)["database_url"] == "postgresql://u:secret@h/db"


def test_an_unreachable_api_or_database_is_one_line(tmp_path):
    port = free_port()  # nothing listens there
    status = evalboard("status", str(uuid.uuid4()), "--api-url", f"http://127.0.0.1:{port}",
                       env=second_terminal(tmp_path))
    assert status.returncode == 1
    assert_one_line(status, f"cannot reach the Evalboard API at http://127.0.0.1:{port}/", "evalboard up")
    token = evalboard("token", "create", "--user", "alice",
                      env=second_terminal(tmp_path, DATABASE_URL=f"postgresql://nobody@127.0.0.1:{port}/none"))
    assert_one_line(token, "cannot reach the database", "evalboard up")


def test_an_unmigrated_database_says_to_migrate(tmp_path):
    empty = create_database(f"evalboard_empty_{os.getpid()}")
    try:
        result = evalboard("token", "create", "--user", "alice", env=second_terminal(tmp_path, DATABASE_URL=empty))
        assert_one_line(result, "no Evalboard tables yet", "evalboard migrate")
    finally:
        drop_database(f"evalboard_empty_{os.getpid()}")


def test_up_on_a_busy_port_says_which_and_starts_nothing(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = evalboard("up", "--api-port", str(port), env=second_terminal(tmp_path))
    assert_one_line(result, f"port {port} on 127.0.0.1 is in use", "--api-port")
    assert not (tmp_path / "pgdata").exists()  # refused before any server was started


def test_invalid_names_and_ids_are_refused_before_any_request(tmp_path):
    bad_user = evalboard("token", "create", "--user", "<script>", env=second_terminal(tmp_path))
    assert_one_line(bad_user, "'<script>' is not a valid user name")
    # No API runs at this address: the id is refused before any request is tried.
    for command in (("status", "../../admin"), ("results", "42"), ("cancel", "abc", "--token", "evb_x")):
        result = evalboard(*command, "--api-url", "http://127.0.0.1:9", env=second_terminal(tmp_path))
        assert result.returncode == 2
        assert_one_line(result, "is not a submission id", "evalboard list")


@pytest.fixture
def running_up(tiny_lm_dir):
    """`evalboard up` as `make run` starts it (embedded PostgreSQL and Redis), with the demo on."""
    data_dir = Path(tempfile.mkdtemp(prefix="evb-run-"))  # short: the embedded servers' sockets live here
    # Demo folders already built are reused as they are: the demo process starts, uploads and submits
    # without minutes of training (no worker runs here, so nothing is evaluated).
    for name in ("tiny-gpt2-untrained", "tiny-gpt2-brief", "tiny-gpt2-longer"):
        shutil.copytree(tiny_lm_dir, data_dir / "demo-models" / name)
    api_port, board_port = free_port(), free_port()
    up = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--api-port", str(api_port),
                           "--board-port", str(board_port), "--workers", "0"], cwd=ROOT,
                          env=second_terminal(data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(up.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any("Press Ctrl-C" in line for line in output):
        assert up.poll() is None and time.monotonic() < deadline, "".join(output)
        time.sleep(0.2)
    try:
        yield {"up": up, "data_dir": data_dir, "api_port": api_port, "board_port": board_port, "output": output}
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            up.wait(timeout=60)
        reader.join(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_second_terminal_uses_the_running_up_and_up_listens_on_loopback_only(running_up):
    data_dir, up = running_up["data_dir"], running_up["up"]
    # First, while the demo still uploads: its token travels in its environment, and nothing of it is in
    # any command line (ps shows those to every local user).
    deadline = time.monotonic() + 30  # `up` starts the demo just after it prints its addresses
    while True:
        children = {p: _cmdline(p) for p in psutil.Process(up.pid).children(recursive=True)}
        demo = [p for p, cmdline in children.items() if "demo-models" in cmdline]
        if demo or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert demo, children
    demo_env = demo[0].environ()  # read at once: the demo ends when its uploads are done
    assert not any("evb_" in arg for cmdline in children.values() for arg in cmdline)
    assert demo_env.get("EVALBOARD_TOKEN", "").startswith("evb_")

    state_file = data_dir / "running.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600  # it names the database: its user's only

    # README step 1, in a second terminal with nothing exported.
    created = evalboard("token", "create", "--user", "alice", env=second_terminal(data_dir))
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("evb_")
    # … and the next steps find the API the same way (no --api-url, no API_URL).
    listed = evalboard("list", env=second_terminal(data_dir, EVALBOARD_TOKEN=token))
    assert listed.returncode == 0, listed.stderr
    assert "no submissions yet" in listed.stdout

    # Every service listens on 127.0.0.1 only (Streamlit's default is every interface).
    board = f"http://127.0.0.1:{running_up['board_port']}/_stcore/health"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(board, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the board did not start"
        time.sleep(0.5)
    # Embedded PostgreSQL and Redis listen on sockets in the data folder, on no TCP address at all.
    ours = {up.pid, *(p.pid for p in psutil.Process(up.pid).children(recursive=True))}
    ours |= {p.pid for p in psutil.process_iter() if str(data_dir) in " ".join(_cmdline(p))}
    listening = [c for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in ours]
    assert {c.laddr.port for c in listening} == {running_up["api_port"], running_up["board_port"]}, listening
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}, listening

    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=60) == 0
    assert not state_file.exists()  # stopped: the next command says nothing runs, not a dead URL
    after = evalboard("token", "create", "--user", "bob", env=second_terminal(data_dir))
    assert_one_line(after, "no Evalboard is running", "make run")


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:  # ended since it was listed
        return []
