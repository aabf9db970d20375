"""Services for benchmarks: the same real PostgreSQL and Redis the tests use."""
import atexit
import os
from pathlib import Path

import psycopg


def setup_services(workdir: Path, database: str) -> None:
    """A fresh database on the PostgreSQL of DATABASE_URL (else an embedded one), migrated; Redis flushed."""
    from cli.embedded import ensure_database, start_missing, stop
    services = start_missing(workdir)  # exports DATABASE_URL / REDIS_URL
    server = services.database_url.replace("postgresql+psycopg://", "postgresql://")
    base, _, query = server.partition("?")
    admin = base.rsplit("/", 1)[0] + "/postgres" + (f"?{query}" if query else "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    ensure_database(admin, database)
    os.environ["DATABASE_URL"] = base.rsplit("/", 1)[0] + f"/{database}" + (f"?{query}" if query else "")
    os.environ["DATA_DIR"] = str(workdir)
    from core.config import get_settings
    get_settings.cache_clear()
    from cli.embedded import migrate
    migrate(os.environ["DATABASE_URL"])
    from runners.dispatch import get_redis
    get_redis().flushdb()
    atexit.register(stop, services.handles)  # embedded servers end with the benchmark
