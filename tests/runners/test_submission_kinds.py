"""Issue 21 end to end on the real services: a chat submission's options reach lm-eval through a real worker
and its confined child (prompts built by the checkpoint's own template, recorded by sha256), and the run's
request cache is gone once it has finished."""
import hashlib

import psycopg

from tests.conftest import DATA_DIR, DATABASE_URL, pack, run_worker_burst
from tests.evaluators.language.small_sets import CHAT_TEMPLATE, with_chat_template


def test_a_chat_submission_is_evaluated_through_its_chat_template(client, auth, tiny_lm_dir, tmp_path):
    folder = with_chat_template(tiny_lm_dir, tmp_path / "tiny-chat")
    upload = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                         content=pack(folder, tmp_path / "chat.tar.gz"), headers=auth)
    assert upload.status_code in (200, 201), upload.text
    submission = client.post("/api/v1/submissions", headers=auth, json={
        "model_name": "tiny-chat", "checkpoint_sha256": upload.json()["sha256"], "suite": "language-core",
        "tasks": ["arithmetic_mc"], "model_type": "chat", "system_instruction": "Answer with the number."}).json()

    worker = run_worker_burst()
    assert worker.returncode == 0, worker.stderr[-3000:]

    done = client.get(f"/api/v1/submissions/{submission['id']}").json()
    assert done["status"] == "finished", done
    with psycopg.connect(DATABASE_URL) as conn:
        run_id, provenance = conn.execute("SELECT id, provenance FROM run WHERE submission_id = %s",
                                          (submission["id"],)).fetchone()
        prompt = conn.execute("SELECT input FROM sample WHERE run_id = %s ORDER BY index LIMIT 1",
                              (run_id,)).fetchone()[0]
    assert prompt.startswith("<|system|>Answer with the number.<|end|>\n<|user|>") and prompt.endswith("<|assistant|>")
    assert provenance["chat_template"]["template_sha256"] == hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()
    assert provenance["spec"]["args"]["apply_chat_template"] is True and provenance["model_type"] == "chat"
    assert "request_cache" not in provenance["spec"]["args"]  # a worker path is no part of the record
    assert provenance["requests"]["computed"] == 800
    assert not list((DATA_DIR / "request-cache").glob(f"*/{run_id}"))
