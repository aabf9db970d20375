"""A gated task's per-sample records (GPQA: its authors ask that examples not be published) are shown to
the model's owner and admins only; its scores, and every other task's samples, stay public."""
import json

import psycopg

from tests.api.test_admin import admin_headers
from tests.conftest import DATABASE_URL, make_token
from tests.seed import seed_scored_model


def run_ids(model_id: int) -> dict[str, str]:
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute("SELECT r.task, r.id::text FROM run r JOIN submission s ON s.id = r.submission_id "
                            "WHERE s.model_id = %s", (model_id,)).fetchall()
    return dict(rows)


def test_gated_samples_are_the_owners_only_and_scores_stay_public(client, auth):
    mid = seed_scored_model("gated-tiny", {"gpqa": 0.4, "mmlu_pro": 0.3}, suite="language-open-v2", samples=3)
    runs = run_ids(mid)
    gated, open_ = f"/api/v1/runs/{runs['gpqa']}/samples.jsonl", f"/api/v1/runs/{runs['mmlu_pro']}/samples.jsonl"
    mallory = {"Authorization": f"Bearer {make_token('mallory')}"}

    for headers in ({}, mallory):
        refused = client.get(gated, headers=headers)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "shown to the model's owner only" in refused.json()["detail"]
        assert "Question" not in refused.text  # not one record leaks with the refusal
        assert client.get(open_, headers=headers).status_code == 200  # a task that is not gated
        assert client.get(f"/api/v1/runs/{runs['gpqa']}", headers=headers).status_code == 200  # the score is public

    for headers in (auth, admin_headers()):  # alice owns it; admins moderate
        lines = client.get(gated, headers=headers).text.splitlines()
        assert [json.loads(line)["input"] for line in lines] == [f"Question {i} of gpqa?" for i in range(3)]


def test_the_suite_marks_gpqa_gated_and_nothing_else():
    from core.catalog import load_suites
    gated = {(s.name, t.name) for s in load_suites().values() for t in s.tasks if t.gated}
    assert gated == {("language-open-v2", "gpqa")}
