"""An efficiency run end to end on the real services: upload → submit efficiency-cpu → real CPU
worker → figures stored with units and the hardware profile → the board's efficiency view."""
import psycopg

from core.catalog import get_suite
from tests.conftest import DATABASE_URL, run_worker_burst


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
    assert provenance["inference"]["efficiency"]["trials"] == suite.task("inference").args["trials"]

    board = client.get("/api/v1/leaderboard/efficiency").json()
    assert {"tokens_per_s", "train_tokens_per_s", "latency_p50_ms", "train_mfu"} <= set(board["metrics"])
    points = {p["metric"]: p for p in board["points"]}
    assert points["tokens_per_s"]["value"] == values[("inference", "tokens_per_s")]
    assert points["tokens_per_s"]["unit"] == "tokens/s" and points["tokens_per_s"]["hardware_class"] == "cpu"
    assert points["latency_p50_ms"]["unit"] == "ms" and points["latency_p50_ms"]["higher_is_better"] is False
    # Efficiency is shown beside the score, never averaged into it.
    (row,) = client.get("/api/v1/leaderboard").json()["rows"]
    assert "efficiency" not in row["capabilities"] and set(row["capabilities"]) == {"understanding"}
    assert row["efficiency"]["tokens_per_s"] == values[("inference", "tokens_per_s")]
