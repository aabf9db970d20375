"""A checkpoint is usable only by those who uploaded its bytes; duplicates are found per owner."""
import psycopg

from tests.conftest import DATABASE_URL, make_token, pack, scratch_database_at


def body(sha256: str, **overrides) -> dict:
    return {"model_name": "tiny", "checkpoint_sha256": sha256, "suite": "language-core", "tasks": ["world_facts"],
            **overrides}


def counts() -> dict:
    with psycopg.connect(DATABASE_URL) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("model", "submission", "run")}


def test_another_authors_checkpoint_is_404_like_one_that_does_not_exist(client, auth, uploaded_checkpoint):
    mallory = {"Authorization": f"Bearer {make_token('mallory')}"}
    stolen = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], model_name="stolen"),
                         headers=mallory)
    missing = client.post("/api/v1/submissions", json=body("0" * 64, model_name="stolen"), headers=mallory)
    assert stolen.status_code == missing.status_code == 404
    assert stolen.json() == missing.json()  # nothing tells "someone else's" from "no such checkpoint"
    assert counts() == {"model": 0, "submission": 0, "run": 0}


def test_the_duplicate_check_never_hands_over_another_authors_submission(client, auth, uploaded_checkpoint):
    alices = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"]), headers=auth)
    assert alices.status_code == 201
    mallory = {"Authorization": f"Bearer {make_token('mallory')}"}
    response = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], model_name="stolen"),
                           headers=mallory)
    assert response.status_code == 404
    assert "runs" not in response.json() and alices.json()["id"] not in response.text


def test_uploading_the_same_bytes_proves_possession_and_gives_an_own_submission(client, auth, tiny_lm_dir, tmp_path):
    data = pack(tiny_lm_dir, tmp_path / "m.tar.gz")
    first = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=data, headers=auth)
    alices = client.post("/api/v1/submissions", json=body(first.json()["sha256"]), headers=auth).json()
    bob = {"Authorization": f"Bearer {make_token('bob')}"}
    again = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=data, headers=bob)
    assert again.status_code == 200 and again.json()["sha256"] == first.json()["sha256"]
    uploaded_checkpoint = first.json()

    bobs = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], model_name="bobs-tiny"),
                       headers=bob)
    assert bobs.status_code == 201, bobs.text
    assert bobs.json()["id"] != alices["id"] and bobs.json()["model_name"] == "bobs-tiny"
    # Each owner's own duplicate check still answers with their own submission.
    assert client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], model_name="bobs-tiny"),
                       headers=bob).json()["id"] == bobs.json()["id"]
    assert client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"]),
                       headers=auth).json()["id"] == alices["id"]
    with psycopg.connect(DATABASE_URL) as conn:
        owners = conn.execute('SELECT u.name FROM checkpoint_uploader cu JOIN "user" u ON u.id = cu.user_id '
                              'ORDER BY u.name').fetchall()
    assert [name for (name,) in owners] == ["alice", "bob"]


def test_the_migration_records_uploaders_and_submitters_of_existing_checkpoints():
    """0003 backfills possession from what 0002's schema knew: who uploaded, who submitted with it."""
    with scratch_database_at("mig", "0002") as scratch:
        url = scratch.url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("""INSERT INTO "user" (id, name, role, created_at) VALUES
                            (1, 'alice', 'author', now()), (2, 'bob', 'author', now()), (3, 'eve', 'author', now())""")
            conn.execute("""INSERT INTO checkpoint (id, sha256, family, format, size_bytes, storage_uri, uploaded_by,
                            created_at) VALUES (1, repeat('a', 64), 'causal-lm', 'tar', 1, '/x', 1, now())""")
            conn.execute("""INSERT INTO model (id, name, family, owner_id, hidden, flagged, created_at) VALUES
                            (1, 'm', 'causal-lm', 2, true, false, now())""")
            conn.execute("""INSERT INTO submission (id, model_id, checkpoint_id, submitted_by, suite, hardware_class,
                            precision, status, submitted_at) VALUES
                            (gen_random_uuid(), 1, 1, 2, 'language-core', 'cpu', 'float32', 'finished', now())""")
        scratch.upgrade("head")
        with psycopg.connect(url) as conn:
            uploaders = conn.execute("SELECT checkpoint_id, user_id FROM checkpoint_uploader ORDER BY user_id").fetchall()
            model = conn.execute("SELECT hidden, hidden_by_admin, withdrawn FROM model").fetchone()
        assert uploaders == [(1, 1), (1, 2)]  # eve, who never touched it, gets nothing
        assert model == (True, True, False)  # an old hide cannot be told from a withdrawal: an admin's, to be safe
