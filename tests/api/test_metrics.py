from tests.seed import seed_scored_model


def metric(text: str, line_start: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(line_start)).split()[-1])


def test_metrics_report_queue_depth_and_runs_by_status(client, auth, uploaded_checkpoint):
    seed_scored_model("done-model", {"world_facts": 0.5})
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "tasks": ["world_facts", "arithmetic_mc"]}
    assert client.post("/api/v1/submissions", json=body, headers=auth).status_code == 201
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert metric(text, 'evalboard_queue_depth{hardware_class="cpu"}') == 2
    assert metric(text, 'evalboard_runs{status="queued"}') == 2
    assert metric(text, 'evalboard_runs{status="finished"}') == 1
    assert metric(text, 'evalboard_workers{hardware_class="cpu"}') == 0
    assert "# TYPE evalboard_run_duration_seconds summary" in text
