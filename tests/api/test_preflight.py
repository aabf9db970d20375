"""POST /submissions/check: a submission's checks before its checkpoint is uploaded, with the very
answers the submission itself would give, and nothing written."""
import psycopg
import pytest

from core.config import get_settings
from tests.conftest import DATABASE_URL

CHECK = "/api/v1/submissions/check"
GOOD = {"model_name": "my-model", "suite": "language-core", "hardware_class": "cpu", "precision": "float32",
        "license": "Apache-2.0"}

BAD = {
    "unknown suite": {"suite": "language-cor"},
    "unknown task": {"tasks": ["world_facts", "no_such_task"]},
    "unknown hardware class": {"hardware_class": "gpu-h200"},
    "webhook without a secret": {"webhook_url": "https://example.org/hook"},
    "licence that is a Markdown link": {"license": "[MIT](https://evil.example/track.png)"},
    "licence that is HTML": {"license": "<img src=x onerror=alert(1)>"},
    "model name with markup": {"model_name": "<b>best</b>"},
    "precision that does not exist": {"precision": "int3"},
    "suite of another family": {"suite": "clip-core"},
}


def rows(table: str) -> int:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def test_an_acceptable_submission_is_answered_200_with_its_tasks(client, auth):
    response = client.post(CHECK, json={**GOOD, "family": "causal-lm", "tasks": ["world_facts"]}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and body["tasks"] == ["world_facts"]
    assert any("no cpu worker" in w for w in body["warnings"])  # accepted, but it would wait
    assert rows("model") == 0 and rows("submission") == 0  # a check writes nothing


@pytest.mark.parametrize("case", list(BAD))
def test_the_check_refuses_as_the_submission_would(client, auth, uploaded_checkpoint, case):
    body = {**GOOD, **BAD[case]}
    checked = client.post(CHECK, json={**body, "family": "causal-lm"}, headers=auth)
    submitted = client.post("/api/v1/submissions", json={**body, "checkpoint_sha256": uploaded_checkpoint["sha256"]},
                            headers=auth)
    assert 400 <= checked.status_code < 500, checked.text
    assert (checked.status_code, checked.json()["detail"]) == (submitted.status_code, submitted.json()["detail"])
    assert checked.headers["content-type"] == "application/problem+json"
    assert rows("model") == 0 and rows("submission") == 0


def test_the_family_is_checked_against_the_suite(client, auth):
    response = client.post(CHECK, json={**GOOD, "family": "clip"}, headers=auth)
    assert response.status_code == 422
    assert response.json()["field"] == "suite"
    assert "evaluates causal-lm models, but the checkpoint is clip" in response.json()["detail"]


def test_the_token_is_checked(client):
    anonymous = client.post(CHECK, json=GOOD)
    assert anonymous.status_code == 401 and "evalboard token create" in anonymous.json()["detail"]
    forged = client.post(CHECK, json=GOOD, headers={"Authorization": "Bearer evb_forged"})
    assert forged.status_code == 401


def test_past_the_daily_limit_the_check_says_when_to_come_back(client, auth, uploaded_checkpoint, monkeypatch):
    monkeypatch.setattr(get_settings(), "submissions_per_day", 1)
    first = client.post("/api/v1/submissions", headers=auth,
                        json={**GOOD, "checkpoint_sha256": uploaded_checkpoint["sha256"]})
    assert first.status_code == 201, first.text
    checked = client.post(CHECK, json=GOOD, headers=auth)
    assert checked.status_code == 429 and int(checked.headers["Retry-After"]) > 0
