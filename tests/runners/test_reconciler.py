"""Postgres is the source of truth: what Redis loses, the reconciler puts back."""
from datetime import timedelta

from rq import Queue

from core.db import session_scope
from core.models import Run, Status, utcnow
from runners.reconciler import reconcile
from tests.conftest import run_worker_burst


def submit(client, auth, sha256, name="tiny"):
    body = {"model_name": name, "checkpoint_sha256": sha256, "suite": "language-core", "hardware_class": "cpu",
            "tasks": ["world_facts", "arithmetic_mc"]}  # two runs are enough to show what the reconciler does
    response = client.post("/api/v1/submissions", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def test_flushall_with_runs_queued_loses_none(client, auth, tiny_lm_dir, tmp_path, redis_conn):
    import shutil

    from tests.conftest import pack
    submissions = []
    # 3 distinct checkpoints (the card differs) × 2 tasks = 6 runs, each checkpoint in its own confined
    # child (20 runs took over four minutes of the suite); make proof does it with 100.
    for i in range(3):
        folder = tmp_path / f"m{i}"
        shutil.copytree(tiny_lm_dir, folder)
        (folder / "README.md").write_text(f"# model {i}\n\nA tiny test model, variant {i}.\n")
        sha = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                          content=pack(folder, tmp_path / f"m{i}.tar.gz"), headers=auth).json()["sha256"]
        body = {"model_name": f"m{i}", "checkpoint_sha256": sha, "suite": "language-core",
                "tasks": ["world_facts", "arithmetic_mc"]}
        submissions.append(client.post("/api/v1/submissions", json=body, headers=auth).json())
    assert Queue("evalboard-cpu", connection=redis_conn).count == 6
    redis_conn.flushall()
    assert Queue("evalboard-cpu", connection=redis_conn).count == 0

    report = reconcile(redis_conn)
    assert report.requeued_missing == 6
    assert reconcile(redis_conn).requeued_missing == 0  # a second pass finds nothing to do

    assert run_worker_burst().returncode == 0
    statuses = [client.get(f"/api/v1/submissions/{s['id']}").json()["status"] for s in submissions]
    assert statuses == ["finished"] * 3


def test_a_run_whose_worker_died_goes_back_to_the_queue(client, auth, uploaded_checkpoint, redis_conn):
    submission = submit(client, auth, uploaded_checkpoint["sha256"])
    run_id = submission["runs"][0]["id"]
    with session_scope() as s:  # as a worker that was SIGKILLed mid-run leaves it
        run = s.get(Run, run_id)
        run.status, run.attempts, run.heartbeat_at = Status.running, 1, utcnow() - timedelta(minutes=5)

    report = reconcile(redis_conn, heartbeat_timeout=timedelta(seconds=60))
    assert report.requeued_stale == 1
    with session_scope() as s:
        assert s.get(Run, run_id).status == Status.queued

    assert run_worker_burst().returncode == 0
    finished = client.get(f"/api/v1/submissions/{submission['id']}").json()
    assert finished["status"] == "finished"
    assert next(r for r in finished["runs"] if r["id"] == run_id)["attempts"] == 2


def test_a_run_that_keeps_killing_workers_fails_as_our_error(client, auth, uploaded_checkpoint, redis_conn):
    submission = submit(client, auth, uploaded_checkpoint["sha256"])
    run_id = submission["runs"][0]["id"]
    with session_scope() as s:
        run = s.get(Run, run_id)
        run.status, run.attempts, run.heartbeat_at = Status.running, 4, utcnow() - timedelta(minutes=5)
    assert reconcile(redis_conn).failed_stale == 1
    run = next(r for r in client.get(f"/api/v1/submissions/{submission['id']}").json()["runs"] if r["id"] == run_id)
    assert (run["status"], run["error_kind"]) == ("failed", "infra")
    assert "stopped responding" in run["error"]
