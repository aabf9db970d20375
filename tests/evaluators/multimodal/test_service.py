"""A tiny CLIP checkpoint through the whole service: upload → submit clip-core → real worker → scores."""
import psycopg

from tests.conftest import DATABASE_URL, pack, run_worker_burst

TASKS = ["digits_zeroshot_zh", "shapes_retrieval_de", "shapes_winoground_en"]


def test_clip_checkpoint_is_scored_on_clip_core_by_a_real_worker(client, auth, tiny_clip_dir, tmp_path):
    upload = client.post("/api/v1/checkpoints", params={"family": "clip"},
                         content=pack(tiny_clip_dir, tmp_path / "clip.tar.gz"), headers=auth)
    assert upload.status_code in (200, 201), upload.text
    body = {"model_name": "tiny-clip", "checkpoint_sha256": upload.json()["sha256"], "suite": "clip-core",
            "hardware_class": "cpu", "tasks": TASKS}
    response = client.post("/api/v1/submissions", json=body, headers=auth)
    assert response.status_code == 201, response.text
    submission = response.json()

    worker = run_worker_burst()
    assert worker.returncode == 0, worker.stderr[-3000:]

    finished = client.get(f"/api/v1/submissions/{submission['id']}").json()
    assert finished["status"] == "finished", finished
    assert sorted(r["task"] for r in finished["runs"]) == sorted(TASKS)
    with psycopg.connect(DATABASE_URL) as conn:
        primary = dict(conn.execute("SELECT r.task, s.metric FROM score s JOIN run r ON r.id = s.run_id "
                                    "WHERE s.primary").fetchall())
        provenance = dict(conn.execute("SELECT task, provenance FROM run").fetchall())
        samples = conn.execute("SELECT count(*) FROM sample").fetchone()[0]
    assert primary == {"digits_zeroshot_zh": "acc1", "shapes_retrieval_de": "MR",
                       "shapes_winoground_en": "group_score"}
    assert samples == 300 + 240 + 120
    for task in TASKS:
        assert provenance[task]["images_per_s"] > 0
        assert provenance[task]["dataset"]["manifest_sha256"] and provenance[task]["config_hash"]


def test_a_clip_folder_without_a_model_config_is_refused(client, auth, tiny_clip_dir, tmp_path):
    import shutil
    folder = tmp_path / "broken"
    shutil.copytree(tiny_clip_dir, folder)
    (folder / "open_clip_config.json").write_text('{"preprocess_cfg": {}}')
    response = client.post("/api/v1/checkpoints", params={"family": "clip"},
                           content=pack(folder, tmp_path / "broken.tar.gz"), headers=auth)
    assert response.status_code == 422, response.text
    assert "open_clip model config" in response.text
