"""Migration 0006: submissions made before it ran plain prompts on full checkpoints, and say so after it."""
import psycopg

from tests.conftest import scratch_database_at


def test_existing_submissions_are_pretrained_with_plain_prompts():
    with scratch_database_at("prompt_options", "0005") as scratch:
        url = scratch.url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("""INSERT INTO "user" (id, name, role, created_at) VALUES (1, 'alice', 'author', now())""")
            conn.execute("""INSERT INTO checkpoint (id, sha256, family, format, size_bytes, storage_uri, uploaded_by,
                            created_at) VALUES (1, repeat('a', 64), 'causal-lm', 'tar', 1, 'store:x', 1, now())""")
            conn.execute("""INSERT INTO model (id, name, family, owner_id, hidden, hidden_by_admin, withdrawn, flagged,
                            created_at) VALUES (1, 'm', 'causal-lm', 1, false, false, false, false, now())""")
            conn.execute("""INSERT INTO submission (id, model_id, checkpoint_id, submitted_by, suite, hardware_class,
                            precision, status, submitted_at) VALUES
                            (gen_random_uuid(), 1, 1, 1, 'language-core', 'cpu', 'float32', 'finished', now())""")
        scratch.upgrade("0006")
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT model_type, chat_options, base_model, base_models FROM submission").fetchone()
        scratch.downgrade("0005")  # and back: the columns go, the row stays
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM submission").fetchone()[0] == 1
    assert row == ("pretrained", {"apply_chat_template": False, "fewshot_as_multiturn": False,
                                  "system_instruction": None}, None, [])
