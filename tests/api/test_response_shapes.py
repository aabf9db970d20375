"""The routes that answered with bare dicts now declare their response models (api/schemas.py): the
OpenAPI document describes them, and the JSON they send is the JSON they sent before, key for key."""
from datetime import timedelta

import pytest
from sqlmodel import select

from core.db import session_scope
from core.models import HardwareProfile, Run, Status, utcnow
from tests.api.test_admin import admin_headers
from tests.seed import seed_scored_model, seed_submission

DESCRIBED = [  # (method, path, status): each answers JSON described by a named schema
    ("post", "/api/v1/admin/users/{name}/tokens", "201"), ("post", "/api/v1/admin/models/{model_id}/flag", "200"),
    ("delete", "/api/v1/admin/models/{model_id}/flag", "200"), ("post", "/api/v1/admin/models/{model_id}/hide", "200"),
    ("delete", "/api/v1/admin/models/{model_id}/hide", "200"), ("get", "/api/v1/runs/{run_id}", "200"),
    ("get", "/api/v1/queue", "200"), ("get", "/api/v1/hardware", "200"), ("get", "/api/v1/suites", "200"),
    ("get", "/api/v1/aggregation", "200"), ("get", "/api/v1/health", "200"), ("post", "/api/v1/submissions", "201"),
    ("post", "/api/v1/submissions/check", "200"),
]


@pytest.mark.parametrize("method, path, status", DESCRIBED, ids=lambda v: str(v))
def test_the_document_describes_what_the_route_answers(client, method, path, status):
    schema = client.get("/openapi.json").json()
    body = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    ref = body.get("$ref") or body.get("items", {}).get("$ref")
    assert ref and ref.startswith("#/components/schemas/"), (method, path, body)
    named = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert named.get("properties"), named


def test_the_queue_sends_the_keys_it_always_sent(client):
    seed_submission("waiting", {"world_facts": Status.running, "arithmetic_mc": Status.queued})
    seed_submission("broken", {"world_facts": Status.failed}, owner="dave")
    body = client.get("/api/v1/queue").json()
    assert set(body) == {"submissions", "hardware", "failures"}
    [submission] = body["submissions"]
    assert set(submission) == {"id", "model_id", "model", "owner", "suite", "hardware_class", "precision", "status",
                               "submitted_at", "started_at", "runs", "progress", "eta_s"}
    assert set(submission["runs"][0]) == {"id", "task", "capability", "status", "stage", "progress", "attempts",
                                          "worker", "queue_position", "eta_s", "error"}
    assert body["hardware"] == {"cpu": {"queued": 1, "workers_alive": 0, "mean_run_s": None}}
    [failure] = body["failures"]
    assert set(failure) == {"run_id", "submission_id", "model_id", "model", "task", "hardware_class", "error",
                            "error_kind", "attempts", "finished_at"}
    # Times as pydantic writes them, as before the route had a model (FastAPI serialized its `-> dict` the same way).
    assert submission["submitted_at"].endswith("Z") and failure["finished_at"].endswith("Z")


def test_hardware_lists_each_class_with_live_and_gone_workers(client):
    with session_scope() as s:
        for name, ago in (("fresh", timedelta(seconds=10)), ("gone", timedelta(minutes=5))):
            s.add(HardwareProfile(hardware_class="cpu", host="h", worker=name, device_name="cpu", device_count=1,
                                  memory_bytes=1 << 30, versions={"torch": "2"}, measured={"gemm_tflops_fp32": 0.1},
                                  last_seen_at=utcnow() - ago))
    hardware = {h["hardware_class"]: h for h in client.get("/api/v1/hardware").json()}
    cpu = hardware["cpu"]
    assert set(cpu) == {"hardware_class", "workers_alive", "workers"} and cpu["workers_alive"] == 1
    assert {w["worker"]: w["alive"] for w in cpu["workers"]} == {"fresh": True, "gone": False}
    assert set(cpu["workers"][0]) == {"id", "worker", "host", "device_name", "device_count", "memory_bytes",
                                      "versions", "measured", "measured_at", "last_seen_at", "alive"}
    assert cpu["workers"][0]["last_seen_at"].endswith("Z")
    assert client.get("/api/v1/hardware-classes").json() == list(hardware)  # beside it, the names alone


def test_a_run_is_its_whole_row(client):
    seed_scored_model("tiny", {"world_facts": 0.5})
    with session_scope() as s:
        run = s.exec(select(Run)).first()
        columns = set(Run.model_fields)
    body = client.get(f"/api/v1/runs/{run.id}").json()
    assert set(body) == columns
    assert body["task"] == "world_facts" and body["status"] == "finished"


def test_moderation_answers_keep_their_keys(client):
    admin = admin_headers()
    mid = seed_scored_model("tiny", {"world_facts": 0.5})
    flagged = client.post(f"/api/v1/admin/models/{mid}/flag", json={"reason": "copied"}, headers=admin).json()
    assert flagged == {"model_id": mid, "flagged": True, "flag_reason": "copied"}
    assert client.delete(f"/api/v1/admin/models/{mid}/flag", headers=admin).json() == {"model_id": mid,
                                                                                         "flagged": False}
    assert client.post(f"/api/v1/admin/models/{mid}/hide", headers=admin).json() == {"model_id": mid, "hidden": True}
    assert client.delete(f"/api/v1/admin/models/{mid}/hide", headers=admin).json() == {"model_id": mid,
                                                                                         "hidden": False}
    token = client.post("/api/v1/admin/users/alice/tokens", headers=admin)
    assert token.status_code == 201 and set(token.json()) == {"user", "token"}
    # A model id that is not there (or not a number) is a 404 / 422, never a 500.
    assert client.post("/api/v1/admin/models/999999/flag", json={"reason": "copied"}, headers=admin).status_code == 404
    assert client.post("/api/v1/admin/models/1%20OR%201=1/hide", headers=admin).status_code == 422


def test_health_and_the_catalogue_keep_their_keys(client):
    health = client.get("/api/v1/health")
    assert health.status_code == 200 and health.json() == {"status": "ok", "checks": {"postgres": "ok",
                                                                                       "redis": "ok"}}
    suite = next(s for s in client.get("/api/v1/suites").json() if s["name"] == "language-core")
    assert set(suite) == {"name", "version", "family", "description", "aggregation", "tasks"}
    assert set(suite["tasks"][0]) == {"name", "capability", "primary_metric", "random_baseline", "evaluator",
                                      "dataset"}
    assert set(client.get("/api/v1/aggregation").json()) == {
        "normalised", "capability", "overall", "track", "coverage", "interval", "rank_range", "band", "compare",
        "draws", "seed", "level"}
