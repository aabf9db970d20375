"""A submission's results in JSON, CSV, lm-eval's layout and a model-index block."""
import csv
import io

import psycopg
import yaml

from tests.conftest import DATABASE_URL
from tests.seed import seed_scored_model


def seeded_submission_id() -> str:
    seed_scored_model("strong", {"world_facts": 0.85, "arithmetic_mc": 0.7})
    with psycopg.connect(DATABASE_URL) as conn:
        return str(conn.execute("SELECT id FROM submission").fetchone()[0])


def test_results_as_json_and_csv(client):
    sid = seeded_submission_id()
    as_json = client.get(f"/api/v1/submissions/{sid}/results").json()
    assert as_json["submission"]["model_name"] == "strong"
    values = {t["task"]: m["value"] for t in as_json["tasks"] for m in t["metrics"] if m["primary"]}
    assert values == {"world_facts": 0.85, "arithmetic_mc": 0.7}

    response = client.get(f"/api/v1/submissions/{sid}/results", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {(r["task"], r["metric"], float(r["value"])) for r in rows if r["primary"] == "True"} == {
        ("world_facts", "acc", 0.85), ("arithmetic_mc", "acc", 0.7)}


def test_results_in_lm_eval_layout(client):
    sid = seeded_submission_id()
    layout = client.get(f"/api/v1/submissions/{sid}/results", params={"format": "lm-eval"}).json()
    assert layout["results"]["world_facts"]["acc,none"] == 0.85
    assert layout["results"]["world_facts"]["acc_stderr,none"] == 0.03
    assert layout["n-samples"]["world_facts"] == {"original": 200, "effective": 200}


def test_results_as_a_model_index_block(client):
    sid = seeded_submission_id()
    response = client.get(f"/api/v1/submissions/{sid}/results", params={"format": "model-index"})
    block = yaml.safe_load(response.text)["model-index"][0]
    assert block["name"] == "strong"
    metrics = {r["dataset"]["name"]: {m["type"]: m for m in r["metrics"]} for r in block["results"]}
    assert metrics["world_facts"]["acc"] == {"type": "acc", "value": 0.85, "name": "acc", "verified": False}
    assert block["results"][0]["source"]["url"].endswith(f"/api/v1/submissions/{sid}")


def test_an_unknown_format_is_422_naming_it(client):
    sid = seeded_submission_id()
    response = client.get(f"/api/v1/submissions/{sid}/results", params={"format": "xml"})
    assert response.status_code == 422 and "format" in response.json()["detail"]


def test_links_come_from_the_configured_public_url_never_the_host_header(client, monkeypatch):
    from core.config import get_settings
    sid = seeded_submission_id()
    hostile = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    response = client.get(f"/api/v1/submissions/{sid}/results", params={"format": "model-index"}, headers=hostile)
    assert response.status_code == 200 and "evil.example" not in response.text
    block = yaml.safe_load(response.text)["model-index"][0]
    assert block["results"][0]["source"]["url"] == f"{get_settings().api_url}/api/v1/submissions/{sid}"

    monkeypatch.setattr(get_settings(), "public_url", "https://board.example.org/")
    response = client.get(f"/api/v1/submissions/{sid}/results", params={"format": "model-index"}, headers=hostile)
    block = yaml.safe_load(response.text)["model-index"][0]
    assert block["results"][0]["source"]["url"] == f"https://board.example.org/api/v1/submissions/{sid}"
