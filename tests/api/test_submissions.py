"""Bad submissions get a clear 4xx naming the problem, and nothing is written."""
import psycopg
import pytest

from tests.conftest import DATABASE_URL


def table_counts() -> dict:
    with psycopg.connect(DATABASE_URL) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("model", "submission", "run")}


def body(sha256: str, **overrides) -> dict:
    return {"model_name": "tiny", "checkpoint_sha256": sha256, "suite": "language-core", "hardware_class": "cpu",
            **overrides}


def test_submission_without_a_token_is_401(client, uploaded_checkpoint):
    response = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"]))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "token" in response.json()["detail"]
    assert table_counts() == {"model": 0, "submission": 0, "run": 0}


def test_submission_with_an_invalid_token_is_401(client, uploaded_checkpoint):
    response = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"]),
                           headers={"Authorization": "Bearer evb_not-a-real-token"})
    assert response.status_code == 401


@pytest.mark.parametrize("overrides, field, words", [
    ({"suite": "no-such-suite"}, "suite", "unknown suite"),
    ({"hardware_class": "quantum-9000"}, "hardware_class", "unknown hardware class"),
    ({"tasks": ["world_facts", "no_such_task"]}, "tasks", "no task 'no_such_task'"),
    ({"precision": "int3"}, "precision", "float32"),
    ({"model_name": "../etc/passwd"}, "model_name", "pattern"),
])
def test_invalid_submission_is_422_naming_the_field_and_writes_nothing(client, auth, uploaded_checkpoint,
                                                                       overrides, field, words):
    response = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], **overrides), headers=auth)
    assert response.status_code == 422, response.text
    problem = response.json()
    named = problem.get("field") or ",".join(e["field"] for e in problem.get("errors", []))
    assert field in named
    assert words in problem["detail"]
    assert table_counts() == {"model": 0, "submission": 0, "run": 0}


def test_an_unknown_checkpoint_is_404_and_writes_nothing(client, auth, uploaded_checkpoint):
    response = client.post("/api/v1/submissions", json=body("0" * 64), headers=auth)
    assert response.status_code == 404 and response.json()["field"] == "checkpoint_sha256"
    assert "upload it first" in response.json()["detail"]
    assert table_counts() == {"model": 0, "submission": 0, "run": 0}


def test_a_task_listed_twice_is_422_naming_it(client, auth, uploaded_checkpoint):
    response = client.post("/api/v1/submissions", headers=auth, json=body(
        uploaded_checkpoint["sha256"], tasks=["world_facts", "arithmetic_mc", "world_facts"]))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "tasks" and "'world_facts' is listed twice" in response.json()["detail"]
    assert table_counts() == {"model": 0, "submission": 0, "run": 0}


def test_a_subset_of_tasks_can_be_chosen(client, auth, uploaded_checkpoint):
    response = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], tasks=["world_facts"]),
                           headers=auth)
    assert response.status_code == 201
    assert [r["task"] for r in response.json()["runs"]] == ["world_facts"]


def test_the_same_submission_twice_returns_the_existing_one(client, auth, uploaded_checkpoint):
    first = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"]), headers=auth)
    again = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"]), headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert table_counts()["submission"] == 1


def test_unknown_submission_is_404(client):
    response = client.get("/api/v1/submissions/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_runs_are_queued_in_redis_with_the_run_id_as_job_id(client, auth, uploaded_checkpoint, redis_conn):
    from rq import Queue
    submission = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"]), headers=auth).json()
    queue = Queue("evalboard-cpu", connection=redis_conn)
    assert sorted(queue.job_ids) == sorted(f"run-{r['id']}" for r in submission["runs"])
    assert all(r["queue_position"] is not None for r in submission["runs"])


def test_a_precision_the_class_cannot_run_is_refused(client, auth, uploaded_checkpoint):
    from core.db import session_scope
    from core.models import HardwareProfile
    with session_scope() as s:  # a CPU worker that measured fp32 and bf16 only, as runners/hardware.py does
        s.add(HardwareProfile(hardware_class="cpu", host="h", worker="w", device_name="cpu", device_count=1,
                              memory_bytes=1, measured={"gemm_tflops_fp32": 0.1, "gemm_tflops_bf16": 0.05}))
    refused = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], precision="float16"),
                          headers=auth)
    assert refused.status_code == 422
    assert refused.json()["field"] == "precision" and "bfloat16, float32" in refused.json()["detail"]
    accepted = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], precision="bfloat16"),
                           headers=auth)
    assert accepted.status_code == 201


def test_the_daily_submission_limit_answers_429_with_retry_after(client, auth, tiny_lm_dir, tmp_path, monkeypatch):
    import shutil

    from core.config import get_settings
    from tests.conftest import pack
    monkeypatch.setattr(get_settings(), "submissions_per_day", 2)
    statuses = []
    for i in range(3):
        folder = tmp_path / f"m{i}"
        shutil.copytree(tiny_lm_dir, folder)
        (folder / "README.md").write_text(f"# variant {i}\n\nA tiny model, variant {i}.\n")
        sha = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                          content=pack(folder, tmp_path / f"m{i}.tar.gz"), headers=auth).json()["sha256"]
        response = client.post("/api/v1/submissions", json=body(sha, model_name=f"m{i}"), headers=auth)
        statuses.append(response.status_code)
    assert statuses == [201, 201, 429]
    assert 0 < int(response.headers["Retry-After"]) <= 86400 + 1
    assert "2 submissions per day" in response.json()["detail"]
    assert table_counts()["submission"] == 2


def test_a_model_too_large_for_the_precision_is_refused(client, auth, uploaded_checkpoint, monkeypatch):
    from core.config import get_settings
    monkeypatch.setattr(get_settings(), "max_params_float32", 1000)
    response = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"]), headers=auth)
    assert response.status_code == 422 and response.json()["field"] == "precision"
    assert "a lower precision may fit" in response.json()["detail"]


def test_an_author_lists_their_own_submissions_paginated(client, auth, tiny_lm_dir, tmp_path):
    import shutil

    from tests.conftest import make_token, pack
    for i in range(3):
        folder = tmp_path / f"m{i}"
        shutil.copytree(tiny_lm_dir, folder)
        (folder / "README.md").write_text(f"# variant {i}\n\nA tiny model, variant {i}.\n")
        sha = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                          content=pack(folder, tmp_path / f"m{i}.tar.gz"), headers=auth).json()["sha256"]
        client.post("/api/v1/submissions", json=body(sha, model_name=f"m{i}"), headers=auth)
    page = client.get("/api/v1/submissions", params={"limit": 2}, headers=auth).json()
    assert page["total"] == 3 and [s["model_name"] for s in page["items"]] == ["m2", "m1"]
    rest = client.get("/api/v1/submissions", params={"limit": 2, "offset": 2}, headers=auth).json()
    assert [s["model_name"] for s in rest["items"]] == ["m0"]
    other = {"Authorization": f"Bearer {make_token('bob')}"}
    assert client.get("/api/v1/submissions", headers=other).json()["total"] == 0


@pytest.mark.parametrize("source, suite", [("hf://openai-community/gpt2@main", "language-core"),
                                           ("hf-hub:timm/vit_base_patch32_clip_224.openai", "clip-core")])
def test_a_hub_model_on_an_offline_deployment_is_refused_at_once_in_words(client, auth, source, suite):
    import time
    started = time.monotonic()
    response = client.post("/api/v1/submissions", headers=auth, json={
        "model_name": "hub-model", "source": source, "suite": suite})
    assert time.monotonic() - started < 5  # refused, not hung
    assert response.status_code == 503
    assert "offline" in response.json()["detail"] and "upload the checkpoint" in response.json()["detail"]
    assert table_counts() == {"model": 0, "submission": 0, "run": 0}


@pytest.mark.parametrize("extra, field", [
    ({"source": "https://huggingface.co/gpt2"}, "source"),
    ({"source": "hf-hub:no-org"}, "source"),
    ({"source": "hf://gpt2", "checkpoint_sha256": "0" * 64}, "checkpoint_sha256"),
    ({}, "checkpoint_sha256"),
])
def test_a_submission_names_exactly_one_well_formed_source(client, auth, extra, field):
    response = client.post("/api/v1/submissions", headers=auth,
                           json={"model_name": "m", "suite": "language-core", **extra})
    assert response.status_code == 422 and response.json()["field"] == field


def test_no_live_worker_is_a_warning_or_a_refusal_per_setting(client, auth, uploaded_checkpoint, monkeypatch):
    from core.config import get_settings
    accepted = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], tasks=["world_facts"]),
                           headers=auth)
    assert accepted.status_code == 201
    assert "no cpu worker has been seen" in accepted.json()["warnings"][0]
    monkeypatch.setattr(get_settings(), "refuse_without_live_worker", True)
    refused = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], precision="bfloat16"),
                          headers=auth)
    assert refused.status_code == 422 and refused.json()["field"] == "hardware_class"


def test_queued_runs_carry_an_eta_from_recent_runs_on_their_class(client, auth, uploaded_checkpoint):
    from datetime import timedelta

    from sqlmodel import select

    from core.db import session_scope
    from core.models import Run, Status, utcnow
    from tests.seed import seed_scored_model
    seed_scored_model("earlier", {"world_facts": 0.5})
    with session_scope() as s:  # that model's run took 10 s on the cpu class
        run = s.exec(select(Run)).first()
        run.started_at, run.finished_at, run.status = utcnow() - timedelta(seconds=10), utcnow(), Status.finished
    submission = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"],
                                                              tasks=["world_facts", "arithmetic_mc"]),
                             headers=auth).json()
    etas = sorted(r["eta_s"] for r in submission["runs"])
    assert etas == [pytest.approx(10, abs=0.5), pytest.approx(20, abs=1)]  # one worker assumed: one after another


@pytest.mark.parametrize("license, link, status", [
    ("other", None, 422),  # `other` needs the text's address
    ("other", "javascript:alert(1)", 422),
    ("other", "http://example.org/license", 422),  # https only
    ("MIT", "https://example.org/license", 422),  # an SPDX licence needs no link
    ("other", "https://example.org/our-license.txt", 201),
])
def test_licence_other_comes_with_an_https_link_shown_as_text(client, auth, uploaded_checkpoint, license, link,
                                                              status):
    body = {"model_name": "linked", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "tasks": ["world_facts"], "license": license}
    if link:
        body["license_link"] = link
    for path in ("/api/v1/submissions/check", "/api/v1/submissions"):  # the pre-flight answers the same
        response = client.post(path, json={**body, "family": "causal-lm"} if path.endswith("check") else body,
                               headers=auth)
        expected = status if status != 201 or path.endswith("submissions") else 200
        assert response.status_code == expected, response.text
    if status == 201:
        import psycopg

        from tests.conftest import DATABASE_URL
        with psycopg.connect(DATABASE_URL) as conn:
            model_id = conn.execute("SELECT id FROM model WHERE name = 'linked'").fetchone()[0]
        model = client.get(f"/api/v1/models/{model_id}").json()["model"]
        assert (model["license"], model["license_link"]) == ("other", link)
    else:
        assert response.json()["detail"]


@pytest.mark.parametrize("field, value", [("suite", "s" * 65), ("hardware_class", "c" * 65), ("revision", "r" * 129)])
def test_the_tables_limits_hold_for_the_request(client, auth, uploaded_checkpoint, field, value):
    """SubmissionCreate derives these fields from core.models.SubmissionBase: a value the column cannot
    hold is refused as a 422 naming the field, before anything is written."""
    response = client.post("/api/v1/submissions", json=body(uploaded_checkpoint["sha256"], **{field: value}),
                           headers=auth)
    assert response.status_code == 422, response.text
    assert field in ",".join(e["field"] for e in response.json()["errors"])
    assert table_counts() == {"model": 0, "submission": 0, "run": 0}
