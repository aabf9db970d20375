"""Migration 0005: checkpoints recorded as machine paths move into the artifact store."""
import shutil

import psycopg

from core.artifact_store import key_of
from core.config import get_settings
from runners.worker_cache import WorkerCache
from tests.conftest import scratch_database_at


def test_existing_checkpoint_folders_are_published_to_the_store_and_rows_point_at_keys(tiny_lm_dir, tmp_path):
    from core.artifact_store import get_store
    legacy = tmp_path / "old-api-disk" / "checkpoints" / ("a" * 64)
    shutil.copytree(tiny_lm_dir, legacy)
    with scratch_database_at("store", "0004") as scratch:
        url = scratch.url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("""INSERT INTO "user" (id, name, role, created_at) VALUES (1, 'alice', 'author', now())""")
            conn.execute("""INSERT INTO checkpoint (id, sha256, family, format, size_bytes, storage_uri, uploaded_by,
                            created_at) VALUES
                            (1, repeat('a', 64), 'causal-lm', 'tar', 1, %s, 1, now()),
                            (2, repeat('b', 64), 'causal-lm', 'tar', 1, '/gone/for/good', 1, now()),
                            (3, repeat('c', 64), 'causal-lm', 'tar', 1, 'hf://org/name@' || repeat('d', 40), 1, now())
                         """, (str(legacy),))
        scratch.upgrade("head")
        with psycopg.connect(url) as conn:
            uris = dict(conn.execute("SELECT id, storage_uri FROM checkpoint").fetchall())
    key = key_of(uris[1])
    assert key is not None and get_store().exists(key)
    assert uris[2] == "/gone/for/good" and uris[3].startswith("hf://")  # nothing to publish; left as they were
    # A worker on another machine gets the same model files from the key alone.
    shutil.rmtree(legacy)
    folder = WorkerCache(tmp_path / "cache", 10**9, get_store(), get_settings()).checkpoint(key, "causal-lm")
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in tiny_lm_dir.iterdir())
    assert (folder / "config.json").read_bytes() == (tiny_lm_dir / "config.json").read_bytes()
