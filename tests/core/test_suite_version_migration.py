"""Migration 0004: existing submissions are mapped to tracks by their suite and the version it had then."""
import psycopg

from tests.conftest import scratch_database_at


def test_existing_submissions_get_the_suite_version_they_ran():
    with scratch_database_at("suite_version", "0003") as scratch:
        url = scratch.url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("""INSERT INTO "user" (id, name, role, created_at) VALUES (1, 'alice', 'author', now())""")
            conn.execute("""INSERT INTO checkpoint (id, sha256, family, format, size_bytes, storage_uri, uploaded_by,
                            created_at) VALUES (1, repeat('a', 64), 'causal-lm', 'tar', 1, '/x', 1, now())""")
            conn.execute("""INSERT INTO model (id, name, family, owner_id, hidden, hidden_by_admin, withdrawn, flagged,
                            created_at) VALUES (1, 'm', 'causal-lm', 1, false, false, false, false, now())""")
            conn.execute("""INSERT INTO submission (id, model_id, checkpoint_id, submitted_by, suite, hardware_class,
                            precision, status, submitted_at) VALUES
                            (gen_random_uuid(), 1, 1, 1, 'language-core', 'cpu', 'float32', 'finished', now()),
                            (gen_random_uuid(), 1, 1, 1, 'clip-core', 'cpu', 'float32', 'finished', now()),
                            (gen_random_uuid(), 1, 1, 1, 'retired-suite', 'cpu', 'float32', 'finished', now())""")
        scratch.upgrade("0004")
        with psycopg.connect(url) as conn:
            versions = dict(conn.execute("SELECT suite, suite_version FROM submission").fetchall())
        scratch.downgrade("0003")  # and back: the column goes, the rows stay
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM submission").fetchone()[0] == 3
    # A suite this revision did not know stays NULL: the board reads it as the suite's current version.
    assert versions == {"language-core": "1.2", "clip-core": "1.0", "retired-suite": None}
