"""Test fixtures on the real services.

PostgreSQL and Redis are the ones named by DATABASE_URL / REDIS_URL, or embedded ones
started here when those are unset. Each test session gets its own fresh database on that
server, migrated with `alembic upgrade head`, and flushes its Redis database.
"""
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import uvicorn
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(tempfile.mkdtemp(prefix="evalboard-test-"))
TEST_DB = f"evalboard_test_{os.getpid()}"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _bootstrap_services() -> tuple[str, str, list]:
    from cli.embedded import start_postgres, start_redis
    handles = []
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        server_url, pg = start_postgres(DATA_DIR / "embedded")
        handles.append(pg)
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        redis_url, redis = start_redis(DATA_DIR / "embedded")
        handles.append(redis)
    return _psycopg_url(server_url), redis_url, handles


SERVER_URL, REDIS_URL, _HANDLES = _bootstrap_services()


def pytest_unconfigure(config):
    from cli.embedded import stop
    stop(_HANDLES)
DATABASE_URL = _with_database(SERVER_URL, TEST_DB)
os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, DATA_DIR=str(DATA_DIR),
                  HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                  TOKENIZERS_PARALLELISM="false")


def create_database(name: str) -> str:
    with psycopg.connect(_with_database(SERVER_URL, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_database(SERVER_URL, name)


def drop_database(name: str) -> None:
    with psycopg.connect(_with_database(SERVER_URL, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def database():
    create_database(TEST_DB)
    from cli.embedded import migrate
    migrate(DATABASE_URL)
    yield DATABASE_URL
    from core.db import get_engine
    get_engine().dispose()
    drop_database(TEST_DB)


@pytest.fixture(scope="session")
def redis_conn() -> Redis:
    conn = Redis.from_url(REDIS_URL)
    conn.flushdb()
    return conn


@pytest.fixture(autouse=True)
def clean_tables(database, redis_conn):
    """Every test starts from empty tables and an empty Redis database."""
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute('TRUNCATE "user", api_token, model, checkpoint, submission, run, score, sample, '
                      'hardware_profile RESTART IDENTITY CASCADE')
    redis_conn.flushdb()
    # Upload sessions belong to user ids, which RESTART IDENTITY hands out again: none may outlive its test.
    import shutil
    shutil.rmtree(DATA_DIR / "artifacts" / "uploads", ignore_errors=True)
    # TRUNCATE went around the ORM: tell this process's board cache its data changed.
    from api.board_snapshot import invalidate_signature
    from api.routes.queue import forget_public
    invalidate_signature()
    forget_public()
    yield


@pytest.fixture
def client():
    from fastapi.testclient import TestClient

    from api.main import app
    with TestClient(app) as c:
        yield c


def make_token(name: str = "alice") -> str:
    from core.crud import create_token, create_user
    from core.db import session_scope
    with session_scope() as s:
        return create_token(session=s, user=create_user(session=s, name=name))


@pytest.fixture
def token() -> str:
    return make_token()


@pytest.fixture
def auth(token) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def tiny_lm_dir() -> Path:
    """An untrained tiny GPT-2 checkpoint folder, built once per session."""
    from evaluators.demo_models.causal_lm import build_causal_lm
    return build_causal_lm(DATA_DIR / "models" / "tiny-untrained", train_steps=0, seed=0)


def pack(folder: Path, out: Path) -> bytes:
    from cli.client import pack_folder
    return pack_folder(folder, out).read_bytes()


@pytest.fixture
def uploaded_checkpoint(client, auth, tiny_lm_dir, tmp_path) -> dict:
    response = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                           content=pack(tiny_lm_dir, tmp_path / "m.tar.gz"), headers=auth)
    assert response.status_code in (200, 201), response.text
    return response.json()


def run_worker_burst(hardware: str = "cpu", timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """A real RQ worker process, in burst mode: it drains the queue and exits."""
    return subprocess.run([sys.executable, "-m", "cli.main", "worker", "--hardware", hardware, "--burst"],
                          cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def model_files(tiny_lm_dir) -> dict[str, bytes]:
    """The valid model folder as {relative path: content}; tests copy and spoil it."""
    return {p.relative_to(tiny_lm_dir).as_posix(): p.read_bytes()
            for p in sorted(tiny_lm_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def real_param_count(tiny_lm_dir) -> int:
    """Counted independently of core.storage: load the tensors and sum their sizes."""
    from safetensors.torch import load_file
    return sum(t.numel() for p in tiny_lm_dir.glob("*.safetensors") for t in load_file(p).values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def api_url():
    """The real API served on loopback by uvicorn, for clients that speak HTTP (the board, the CLI)."""
    from api.main import app
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/api/v1/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def demo_models_dir() -> Path:
    """The demo checkpoints (language and CLIP), built once per session; tests copy or read them."""
    from cli.demo import build_demo_models
    from evaluators.demo_models.clip import build_demo_clip_models
    folder = DATA_DIR / "demo-models"
    build_demo_models(folder)
    build_demo_clip_models(folder)
    return folder


@pytest.fixture(scope="session")
def s3_server():
    """moto's standalone S3 server on loopback (tests/s3_server.py), for the artifact store's S3 backend."""
    from tests.s3_server import CREDENTIALS, S3Server
    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
    server = S3Server(DATA_DIR / "moto.log").start()
    yield server
    server.stop()


class ScratchMigrations:
    """A scratch database of its own, moved between Alembic revisions, for the migration tests."""

    def __init__(self, url: str):
        from alembic.config import Config

        from core.db import normalise_url
        self.url = url
        self.config = Config(str(ROOT / "alembic.ini"))
        self.config.attributes["url"] = normalise_url(url)

    def upgrade(self, revision: str) -> None:
        from alembic import command
        command.upgrade(self.config, revision)

    def downgrade(self, revision: str) -> None:
        from alembic import command
        command.downgrade(self.config, revision)


@contextlib.contextmanager
def scratch_database_at(suffix: str, revision: str):
    """A fresh database migrated to `revision`, dropped afterwards."""
    name = f"{TEST_DB}_{suffix}"
    scratch = ScratchMigrations(create_database(name))
    try:
        scratch.upgrade(revision)
        yield scratch
    finally:
        drop_database(name)
