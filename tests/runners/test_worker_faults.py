"""Workers under faults: killed mid-run, starved of memory, told to cancel. Real processes throughout."""
import json
import shutil
import time

import psycopg

from core.models import Status
from tests.conftest import DATABASE_URL, pack
from tests.runners.worker_process import WorkerProcess, wait_for_run


def upload(client, auth, folder, tmp_path) -> str:
    response = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                           content=pack(folder, tmp_path / f"{folder.name}.tar.gz"), headers=auth)
    assert response.status_code in (200, 201), response.text
    return response.json()["sha256"]


def submit(client, auth, sha256, name, tasks=("world_facts",)) -> dict:
    body = {"model_name": name, "checkpoint_sha256": sha256, "suite": "language-core", "tasks": list(tasks)}
    response = client.post("/api/v1/submissions", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def score_rows(run_id: str) -> int:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT count(*) FROM score WHERE run_id = %s", (run_id,)).fetchone()[0]


def test_sigkill_mid_run_completes_on_retry_with_one_set_of_scores(client, auth, slower_lm_dir, tmp_path):
    submission = submit(client, auth, upload(client, auth, slower_lm_dir, tmp_path), "slower")
    run_id = submission["runs"][0]["id"]
    first = WorkerProcess(tmp_path / "first.log")
    try:
        wait_for_run(run_id, lambda r: r.status == Status.running)
        first.sigkill()
    finally:
        first.stop()

    second = WorkerProcess(tmp_path / "second.log")
    try:
        run = wait_for_run(run_id, lambda r: r.status.is_terminal, timeout_s=180)
    finally:
        second.stop()
    assert run.status == Status.finished and run.attempts == 2
    assert score_rows(run_id) == 2  # one set: acc and acc_norm, once each
    with psycopg.connect(DATABASE_URL) as conn:
        assert conn.execute("SELECT count(*) FROM run WHERE status = 'running'").fetchone()[0] == 0


def _memory_hog(tiny_lm_dir, out):
    """An honest checkpoint (its weights are exactly its config's model, so every upload check passes)
    that is small on disk but costly to evaluate: a 500,000-word output layer over 8-wide embeddings
    (4M parameters, 16 MB) makes every forward pass produce batch × length × 500,000 logits, gigabytes."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = json.loads((tiny_lm_dir / "config.json").read_text())
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=500_000, n_embd=8, n_layer=1, n_head=2,
                                       n_positions=config.get("n_positions", 512)))
    model.save_pretrained(out, safe_serialization=True)  # random weights: they do not compress away
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "README.md", "LICENSE"):
        if (tiny_lm_dir / name).exists():
            shutil.copy(tiny_lm_dir / name, out / name)
    return out


def test_a_checkpoint_past_the_memory_cap_fails_as_a_user_error_and_the_worker_lives_on(
        client, auth, tiny_lm_dir, tmp_path):
    hog = submit(client, auth, upload(client, auth, _memory_hog(tiny_lm_dir, tmp_path / "hog"), tmp_path), "hog")
    fine = submit(client, auth, upload(client, auth, tiny_lm_dir, tmp_path), "fine")
    worker = WorkerProcess(tmp_path / "worker.log", env={"EVAL_MEMORY_CAP_BYTES": str(int(1.5 * 2**30))})
    try:
        hog_run = wait_for_run(hog["runs"][0]["id"], lambda r: r.status.is_terminal, timeout_s=180)
        fine_run = wait_for_run(fine["runs"][0]["id"], lambda r: r.status.is_terminal, timeout_s=180)
        assert worker.proc.poll() is None  # the worker is still serving
    finally:
        worker.stop()
    assert (hog_run.status, hog_run.error_kind.value) == (Status.failed, "user")
    assert "memory cap" in hog_run.error
    assert fine_run.status == Status.finished


def test_cancelling_a_running_evaluation_stops_it_within_seconds(client, auth, slower_lm_dir, tmp_path):
    submission = submit(client, auth, upload(client, auth, slower_lm_dir, tmp_path), "slower")
    run_id = submission["runs"][0]["id"]
    worker = WorkerProcess(tmp_path / "worker.log")
    try:
        wait_for_run(run_id, lambda r: r.status == Status.running and r.stage == "infer", timeout_s=120)
        assert client.post(f"/api/v1/submissions/{submission['id']}/cancel", headers=auth).status_code == 200
        cancelled_at = time.monotonic()
        stopped_after = worker.wait_for_text("cancelled while running", timeout_s=15)
        assert time.monotonic() - cancelled_at < 5 and stopped_after < 5
    finally:
        worker.stop()
    assert score_rows(run_id) == 0
    assert client.get(f"/api/v1/submissions/{submission['id']}").json()["status"] == "cancelled"
