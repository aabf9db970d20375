import psycopg
from rq import Queue

from tests.conftest import DATABASE_URL
from tests.seed import seed_scored_model

from tests.conftest import make_token, run_worker_burst


def submit(client, auth, sha256):
    body = {"model_name": "tiny", "checkpoint_sha256": sha256, "suite": "language-core"}
    return client.post("/api/v1/submissions", json=body, headers=auth).json()


def test_owner_cancels_a_queued_submission_and_no_run_is_evaluated(client, auth, uploaded_checkpoint, redis_conn):
    submission = submit(client, auth, uploaded_checkpoint["sha256"])
    response = client.post(f"/api/v1/submissions/{submission['id']}/cancel", headers=auth)
    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert {r["status"] for r in cancelled["runs"]} == {"cancelled"}
    assert Queue("evalboard-cpu", connection=redis_conn).count == 0

    assert run_worker_burst().returncode == 0
    after = client.get(f"/api/v1/submissions/{submission['id']}").json()
    assert after["status"] == "cancelled" and all(not r["scores"] for r in after["runs"])


def test_another_author_cannot_cancel_and_learns_nothing(client, auth, uploaded_checkpoint):
    submission = submit(client, auth, uploaded_checkpoint["sha256"])
    mallory = {"Authorization": f"Bearer {make_token('mallory')}"}
    response = client.post(f"/api/v1/submissions/{submission['id']}/cancel", headers=mallory)
    assert response.status_code == 404
    assert client.get(f"/api/v1/submissions/{submission['id']}").json()["status"] == "queued"


def test_withdraw_takes_the_model_off_the_board(client, auth, uploaded_checkpoint):
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "tasks": ["world_facts"]}
    submission = client.post("/api/v1/submissions", json=body, headers=auth).json()
    assert run_worker_burst().returncode == 0
    assert client.get("/api/v1/leaderboard").json()["total"] == 1
    assert client.post(f"/api/v1/submissions/{submission['id']}/withdraw", headers=auth).status_code == 200
    assert client.get("/api/v1/leaderboard").json()["total"] == 0
    # Its results stay stored, readable by its owner only.
    assert client.get(f"/api/v1/submissions/{submission['id']}", headers=auth).json()["runs"][0]["scores"]
    assert client.get(f"/api/v1/submissions/{submission['id']}").status_code == 404


def test_rerun_evaluates_again_and_replaces_the_results(client, auth, uploaded_checkpoint):
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "tasks": ["world_facts"]}
    submission = client.post("/api/v1/submissions", json=body, headers=auth).json()
    refused = client.post(f"/api/v1/submissions/{submission['id']}/rerun", headers=auth)
    assert refused.status_code == 422 and "cancel it first" in refused.json()["detail"]
    assert run_worker_burst().returncode == 0
    first = client.get(f"/api/v1/submissions/{submission['id']}").json()["runs"][0]

    again = client.post(f"/api/v1/submissions/{submission['id']}/rerun", headers=auth).json()
    assert again["status"] == "queued" and again["runs"][0]["scores"] == {}
    assert run_worker_burst().returncode == 0
    second = client.get(f"/api/v1/submissions/{submission['id']}").json()["runs"][0]
    assert second["status"] == "finished" and second["scores"] == first["scores"]  # same model, same numbers
    mallory = {"Authorization": f"Bearer {make_token('mallory')}"}
    assert client.post(f"/api/v1/submissions/{submission['id']}/rerun", headers=mallory).status_code == 404


def test_a_rerun_counts_against_the_daily_submission_limit(client, auth, monkeypatch, redis_conn):
    from core.config import get_settings
    monkeypatch.setattr(get_settings(), "submissions_per_day", 3)
    for name in ("a", "b"):  # two of today's three submissions, finished
        seed_scored_model(name, {"world_facts": 0.5})
    with psycopg.connect(DATABASE_URL) as conn:
        first, second = [str(i) for (i,) in conn.execute("SELECT id FROM submission ORDER BY id").fetchall()]
    assert client.post(f"/api/v1/submissions/{first}/rerun", headers=auth).status_code == 200  # the third

    refused = client.post(f"/api/v1/submissions/{second}/rerun", headers=auth)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 86400 + 1
    assert "3 submissions per day" in refused.json()["detail"] and "re-runs count" in refused.json()["detail"]
    after = client.get(f"/api/v1/submissions/{second}", headers=auth).json()
    assert after["status"] == "finished" and after["runs"][0]["scores"]  # nothing of it was touched
    assert Queue("evalboard-cpu", connection=redis_conn).count == 1  # only the accepted re-run's run
