"""Two workers as on two machines: separate DATA_DIR and cache folders, nothing shared with the API
but PostgreSQL, Redis and the artifact store (the API's own file store, or an S3 server).

They split one submission's tasks between them, each fetches the checkpoint once, and the scores
equal those of a single evaluation of the same checkpoint exactly.
"""
import os
import uuid

import psycopg
import pytest

from core.catalog import get_suite
from core.config import get_settings
from evaluators.base import EvalSpec
from runners.eval_sandbox import EvalProcess, EvalRequest
from tests.conftest import DATA_DIR, DATABASE_URL, pack
from tests.runners.worker_process import WorkerProcess, wait_for_run
from tests.s3_server import s3_env

TASKS = ["arithmetic_mc", "world_facts"]


@pytest.fixture(params=["file", "s3"])
def store_env(request, s3_server, monkeypatch) -> dict[str, str]:
    """The artifact store both the API (in this process) and the workers use."""
    if request.param == "file":
        env = {"ARTIFACT_STORE_URL": f"file://{DATA_DIR / 'artifacts' / 'store'}"}
    else:
        env = s3_env(s3_server, s3_server.make_bucket(f"two-{uuid.uuid4().hex[:10]}"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def reference_scores(folder) -> dict[str, float]:
    """What one evaluation of the checkpoint gives: the worker's own evaluation path, run once here."""
    suite, process, scores = get_suite("language-core"), EvalProcess(), {}
    try:
        for name in TASKS:
            task = suite.task(name)
            spec = EvalSpec(task=name, evaluator=task.evaluator, args=task.args, seed=0, precision="float32",
                            primary_metric=task.primary_metric)
            outcome, _ = process.run(EvalRequest("causal-lm", str(folder), "float32", "cpu", spec),
                                     memory_cap_bytes=8 * 2**30, timeout_s=600, on_progress=lambda *a: None,
                                     is_cancelled=lambda: False)
            scores.update({(name, m.name): m.value for m in outcome.metrics})
    finally:
        process.kill()
    return scores


def test_two_workers_on_two_machines_share_a_submission_and_fetch_once(client, auth, tiny_lm_dir, tmp_path,
                                                                       store_env):
    upload = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                         content=pack(tiny_lm_dir, tmp_path / "m.tar.gz"), headers=auth)
    assert upload.status_code == 201, upload.text
    sha = upload.json()["sha256"]
    workers = []
    for name in ("machine-a", "machine-b"):
        home = tmp_path / name
        env = {**store_env, "DATA_DIR": str(home), "WORKER_CACHE_DIR": str(home / "cache")}
        workers.append(WorkerProcess(tmp_path / f"{name}.log", env=env))
    try:
        for worker in workers:
            worker.wait_for_text("Listening on", timeout_s=180)  # both idle before any job exists
        response = client.post("/api/v1/submissions", headers=auth, json={
            "model_name": "two-machines", "checkpoint_sha256": sha, "suite": "language-core", "tasks": TASKS,
            "license": "MIT"})
        assert response.status_code == 201, response.text
        for run in response.json()["runs"]:
            wait_for_run(run["id"], lambda r: r.status.is_terminal, timeout_s=240)
    finally:
        for worker in workers:
            worker.stop()

    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute("SELECT r.task, r.worker, r.status, s.metric, s.value FROM run r "
                            "JOIN score s ON s.run_id = r.id").fetchall()
    assert {status for _, _, status, _, _ in rows} == {"finished"}, rows
    assert len({worker for _, worker, _, _, _ in rows}) == 2  # both machines took work
    for worker in workers:
        log = worker.output()
        assert log.count(f"checkpoint {sha[:12]} fetched from") == 1, log[-3000:]
    # Neither machine read the API's unpacked copy: each has its own verified one.
    for name in ("machine-a", "machine-b"):
        assert (tmp_path / name / "cache" / "checkpoints" / f"{sha}.ok").is_file()

    served = {(task, metric): value for task, _, _, metric, value in rows}
    expected = reference_scores(tiny_lm_dir)
    assert {k: served[k] for k in expected} == expected
