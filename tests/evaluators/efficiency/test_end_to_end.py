"""Efficiency runs end to end on the real services: upload → submit efficiency-cpu (or
efficiency-clip-cpu) → real CPU worker → figures stored with units and the hardware profile →
the board's efficiency view."""
import psycopg
import pytest

from core.catalog import get_suite
from tests.conftest import DATABASE_URL, pack, run_worker_burst


def submit(client, auth, sha256, suite, **extra):
    body = {"model_name": "tiny", "checkpoint_sha256": sha256, "suite": suite, "hardware_class": "cpu", **extra}
    response = client.post("/api/v1/submissions", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def test_efficiency_run_is_measured_by_a_real_worker_and_shown_on_the_board(client, auth, uploaded_checkpoint):
    suite = get_suite("efficiency-cpu")
    submission = submit(client, auth, uploaded_checkpoint["sha256"], "efficiency-cpu")
    assert sorted(r["task"] for r in submission["runs"]) == ["inference", "training"]
    # The efficiency view lists models that are on the board, which needs a capability score: one quick task.
    submit(client, auth, uploaded_checkpoint["sha256"], "language-core", tasks=["world_facts"])

    worker = run_worker_burst()
    assert worker.returncode == 0, worker.stderr[-3000:]

    finished = client.get(f"/api/v1/submissions/{submission['id']}").json()
    assert finished["status"] == "finished", finished
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute("SELECT r.task, r.capability, s.metric, s.value, s.unit, s.primary, s.stderr "
                            "FROM score s JOIN run r ON r.id = s.run_id WHERE r.submission_id = %s",
                            (submission["id"],)).fetchall()
        provenance = dict(conn.execute("SELECT task, provenance FROM run WHERE submission_id = %s",
                                       (submission["id"],)).fetchall())
        profile_ids = [r[0] for r in conn.execute("SELECT id FROM hardware_profile").fetchall()]
    assert {r[1] for r in rows} == {"efficiency"}
    assert all(r[4] for r in rows), [r for r in rows if not r[4]]  # every figure has its unit
    primaries = {r[0]: (r[2], r[3], r[4]) for r in rows if r[5]}
    assert primaries["inference"][0] == "tokens_per_s" and primaries["inference"][1] > 0
    assert primaries["training"][0] == "train_tokens_per_s" and primaries["training"][2] == "tokens/s"
    assert {t.name: t.primary_metric for t in suite.tasks} == {k: v[0] for k, v in primaries.items()}
    values = {(r[0], r[2]): r[3] for r in rows}
    assert values[("training", "loss_decreased")] == 1.0 and values[("inference", "mfu")] > 0
    for task in ("inference", "training"):
        assert provenance[task]["hardware_profile_id"] in profile_ids
        eff = provenance[task]["efficiency"]
        assert eff["threads"] == 1 and eff["device"] == "cpu" and eff["peak"]["measured_tflops"] > 0
    assert provenance["inference"]["efficiency"]["rounds"] == suite.task("inference").args["rounds"]
    assert provenance["training"]["efficiency"]["steps"] == suite.task("training").args["steps"]

    board = client.get("/api/v1/leaderboard/efficiency").json()
    assert {"tokens_per_s", "train_tokens_per_s", "latency_p50_ms", "train_mfu"} <= set(board["metrics"])
    points = {p["metric"]: p for p in board["points"]}
    assert points["tokens_per_s"]["value"] == values[("inference", "tokens_per_s")]
    assert points["tokens_per_s"]["unit"] == "tokens/s" and points["tokens_per_s"]["hardware_class"] == "cpu"
    # The board shows each figure with its dispersion and the profile of the worker that measured it.
    assert points["tokens_per_s"]["stderr"] > 0 and points["tokens_per_s"]["n"] > 1
    assert points["tokens_per_s"]["hardware_profile_id"] == provenance["inference"]["hardware_profile_id"]
    assert points["latency_p50_ms"]["unit"] == "ms" and points["latency_p50_ms"]["higher_is_better"] is False
    # Efficiency is shown beside the score, never averaged into it.
    (row,) = client.get("/api/v1/leaderboard").json()["rows"]
    assert "efficiency" not in row["capabilities"] and set(row["capabilities"]) == {"understanding"}
    assert row["efficiency"]["tokens_per_s"] == values[("inference", "tokens_per_s")]


def test_clip_efficiency_is_measured_against_the_workers_profile_and_shown_on_the_board(client, auth, tiny_clip_dir,
                                                                                         tmp_path):
    upload = client.post("/api/v1/checkpoints", params={"family": "clip"},
                         content=pack(tiny_clip_dir, tmp_path / "clip.tar.gz"), headers=auth)
    assert upload.status_code in (200, 201), upload.text
    submission = submit(client, auth, upload.json()["sha256"], "efficiency-clip-cpu", model_name="tiny-clip")

    # The suite pins one thread; a one-thread worker's profile is then the peak the run is held to.
    worker = run_worker_burst(env={"OMP_NUM_THREADS": "1"})
    assert worker.returncode == 0, worker.stderr[-3000:]

    finished = client.get(f"/api/v1/submissions/{submission['id']}").json()
    assert finished["status"] == "finished", finished
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute("SELECT s.metric, s.value, s.unit, s.primary FROM score s JOIN run r ON r.id = s.run_id "
                            "WHERE r.submission_id = %s", (submission["id"],)).fetchall()
        provenance = conn.execute("SELECT provenance FROM run WHERE submission_id = %s",
                                  (submission["id"],)).fetchone()[0]
        (profile_id, measured), = conn.execute("SELECT id, measured FROM hardware_profile").fetchall()
    assert all(r[2] for r in rows) and [r[0] for r in rows if r[3]] == ["images_per_s"]
    values = {r[0]: r[1] for r in rows}
    assert values["images_per_s"] > 0 and values["texts_per_s"] > 0 and values["flops_per_image"] > 0
    peak = provenance["efficiency"]["peak"]
    assert provenance["hardware_profile_id"] == profile_id == peak["profile_id"]
    assert peak["measured_source"] == "worker_profile" and peak["measured_tflops"] == measured["gemm_tflops_fp32"]
    assert values["mfu"] == pytest.approx(values["flops_per_image"] * values["images_per_s"]
                                          / (peak["measured_tflops"] * 1e12))
    assert [p["batch"] for p in provenance["efficiency"]["grid"]] == get_suite("efficiency-clip-cpu").task(
        "inference").args["batch_sizes"]

    board = client.get("/api/v1/leaderboard/efficiency").json()
    assert {"images_per_s", "texts_per_s", "image_latency_p50_ms"} <= set(board["metrics"])
    points = {p["metric"]: p for p in board["points"]}
    assert points["images_per_s"]["value"] == values["images_per_s"] and points["images_per_s"]["unit"] == "images/s"
    assert points["images_per_s"]["higher_is_better"] and points["images_per_s"]["model"] == "tiny-clip"
    assert points["image_latency_p50_ms"]["higher_is_better"] is False
