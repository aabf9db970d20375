"""The leaderboard endpoint and its companions (models, compare, queue, suites) on seeded data."""
import csv
import io
import json

import pytest

from core.models import Status
from tests.seed import seed_scored_model, seed_submission

BOARD = "/api/v1/leaderboard"


@pytest.fixture
def board_models() -> dict[str, int]:
    return {
        "gpt-big": seed_scored_model("gpt-big", {"world_facts": 0.85, "arithmetic_mc": 0.70}, params=7_000_000,
                                     precision="bfloat16", hardware_class="gpu-h100", license="Apache-2.0"),
        "gpt-small": seed_scored_model("gpt-small", {"world_facts": 0.40, "arithmetic_mc": 0.30}, params=1_000),
        "clip-b": seed_scored_model("clip-b", {"imagenet_zs": 0.60, "retrieval": 0.50}, owner="carol",
                                    family="clip", suite="clip-core", params=150_000),
        "sneaky": seed_scored_model("sneaky", {"world_facts": 0.99, "arithmetic_mc": 0.99}, flagged=True),
    }


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["model"] for r in response.json()["rows"]]


def test_board_ranks_by_overall_and_hides_flagged_models(client, board_models):
    body = client.get(BOARD).json()
    assert [r["model"] for r in body["rows"]] == ["gpt-big", "clip-b", "gpt-small"]
    assert body["total"] == 3
    top = body["rows"][0]
    assert top["rank"] == 1 and top["overall"] == pytest.approx(0.7)
    low, high = top["overall_ci"]
    assert low < 0.7 < high
    assert set(top["capabilities_ci"]) == {"understanding", "cognition"}
    assert names(client.get(BOARD, params={"include_flagged": True}))[0] == "sneaky"


def test_filters_narrow_the_board_without_changing_ranks(client, board_models):
    clip = client.get(BOARD, params={"family": "clip"}).json()["rows"]
    assert [(r["model"], r["rank"]) for r in clip] == [("clip-b", 2)]
    assert names(client.get(BOARD, params={"params_min": 100_000})) == ["gpt-big", "clip-b"]
    assert names(client.get(BOARD, params={"params_max": 150_000})) == ["clip-b", "gpt-small"]
    assert names(client.get(BOARD, params={"precision": "bfloat16"})) == ["gpt-big"]
    assert names(client.get(BOARD, params={"hardware_class": "cpu"})) == ["clip-b", "gpt-small"]
    assert names(client.get(BOARD, params={"license": "Apache-2.0,MIT"})) == ["gpt-big", "clip-b", "gpt-small"]
    assert names(client.get(BOARD, params=[("family", "clip"), ("family", "causal-lm")])) == [
        "gpt-big", "clip-b", "gpt-small"]


def test_search_matches_names_and_fields(client, board_models):
    assert names(client.get(BOARD, params={"q": "gpt"})) == ["gpt-big", "gpt-small"]
    assert names(client.get(BOARD, params={"q": "family:clip"})) == ["clip-b"]
    assert names(client.get(BOARD, params={"q": "owner:carol"})) == ["clip-b"]
    assert names(client.get(BOARD, params={"q": "owner:alice small"})) == ["gpt-small"]
    bad = client.get(BOARD, params={"q": "colour:red"})
    assert bad.status_code == 422 and "unknown search field 'colour'" in bad.json()["detail"]


def test_sort_and_pages(client, board_models):
    assert names(client.get(BOARD, params={"sort": "params"})) == ["gpt-small", "clip-b", "gpt-big"]
    assert names(client.get(BOARD, params={"sort": "-params", "limit": 1, "offset": 1})) == ["clip-b"]
    # A model without the column sorts last, whichever the direction.
    assert names(client.get(BOARD, params={"sort": "-multimodal"}))[0] == "clip-b"
    assert names(client.get(BOARD, params={"sort": "task:world_facts"})) == ["gpt-small", "gpt-big", "clip-b"]
    assert client.get(BOARD, params={"sort": "shoe_size"}).status_code == 422


def test_raw_view_reports_raw_means_in_the_same_order(client, board_models):
    rows = client.get(BOARD, params={"normalised": False}).json()["rows"]
    assert [r["model"] for r in rows] == ["gpt-big", "clip-b", "gpt-small"]
    assert rows[0]["overall"] == pytest.approx((0.85 + 0.70) / 2)
    assert rows[0]["capabilities"]["understanding"] == pytest.approx(0.85)


def test_csv_and_json_export_are_the_rows_the_board_shows(client, board_models):
    params = {"q": "gpt", "columns": "rank,model,overall,overall_low,overall_high,understanding,task:world_facts"}
    exported = client.get(BOARD, params={**params, "format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["x-total-count"] == "2"
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(table[0]) == params["columns"].split(",")
    assert [(r["rank"], r["model"], r["overall"], r["understanding"], r["task:world_facts"]) for r in table] == [
        ("1", "gpt-big", "70.0", "80.0", "80.0"), ("3", "gpt-small", "13.3", "20.0", "20.0")]
    records = json.loads(client.get(BOARD, params={**params, "format": "json"}).text)
    assert [str(r["overall"]) for r in records] == [r["overall"] for r in table]
    assert records[0]["overall_low"] < 70.0 < records[0]["overall_high"]
    assert client.get(BOARD, params={"format": "csv", "columns": "model,nope"}).status_code == 422


def test_close_models_share_a_rank_band(client):
    seed_scored_model("a", {"world_facts": 0.80}, stderr=0.03)
    seed_scored_model("b", {"world_facts": 0.79}, stderr=0.03)
    seed_scored_model("c", {"world_facts": 0.40}, stderr=0.03)
    rows = client.get(BOARD).json()["rows"]
    assert [(r["model"], r["band"], r["rank_range"]) for r in rows] == [
        ("a", 1, [1, 2]), ("b", 1, [1, 2]), ("c", 2, [3, 3])]
    records = json.loads(client.get(BOARD, params={"format": "json", "columns": "model,rank_range"}).text)
    assert records == [{"model": "a", "rank_range": "1-2"}, {"model": "b", "rank_range": "1-2"},
                       {"model": "c", "rank_range": "3"}]


def test_the_board_follows_new_results(client):
    seed_scored_model("first", {"world_facts": 0.5})
    assert names(client.get(BOARD)) == ["first"]
    seed_scored_model("second", {"world_facts": 0.9})
    assert names(client.get(BOARD)) == ["second", "first"]


def test_facets_and_empty_board(client, board_models):
    facets = client.get(f"{BOARD}/facets").json()
    assert facets["families"] == ["causal-lm", "clip"]
    assert facets["capabilities"] == ["understanding", "cognition", "multimodal"]
    assert facets["params_min"] == 1_000 and facets["params_max"] == 7_000_000
    assert facets["flagged"] == 1
    assert "task:world_facts" in facets["columns"]


def test_empty_board(client):
    body = client.get(BOARD).json()
    assert body["rows"] == [] and body["total"] == 0
    assert client.get(BOARD, params={"format": "csv"}).text.startswith("rank,rank_range,band,model_id,model")


def test_efficiency_points_carry_the_overall_score_dispersion_and_profile(client):
    seed_scored_model("fast", {"world_facts": 0.6}, efficiency={"tokens_per_s": (900.0, 25.0), "latency_p50_ms": 12.0},
                      hardware_profile_id=7)
    seed_scored_model("slow", {"world_facts": 0.8})
    body = client.get(f"{BOARD}/efficiency", params={"metric": "tokens_per_s"}).json()
    assert body["metrics"] == ["latency_p50_ms", "tokens_per_s"]
    assert [(p["model"], p["value"], p["overall"]) for p in body["points"]] == [("fast", 900.0, pytest.approx(0.4667,
                                                                                                             abs=1e-3))]
    (point,) = body["points"]
    assert (point["stderr"], point["n"], point["hardware_profile_id"]) == (25.0, 40, 7)
    # Efficiency is shown beside the scores, never averaged into them.
    row = client.get(BOARD).json()["rows"][1]
    assert row["model"] == "fast" and set(row["capabilities"]) == {"understanding"}
    assert row["efficiency"] == {"tokens_per_s": 900.0, "latency_p50_ms": 12.0}


def test_model_detail_has_scores_provenance_and_a_reproduce_command(client, board_models):
    body = client.get(f"/api/v1/models/{board_models['gpt-big']}").json()
    assert body["model"]["name"] == "gpt-big" and body["board"]["rank"] == 1
    tasks = {t["task"]: t for t in body["tasks"]}
    assert [t["task"] for t in body["tasks"]] == ["world_facts", "arithmetic_mc"]  # understanding first
    facts = tasks["world_facts"]
    assert facts["raw"] == 0.85 and facts["stderr"] == 0.03 and facts["normalised"] == pytest.approx(0.8)
    assert facts["metrics"]["acc_norm"]["value"] == 0.85
    assert facts["provenance"]["checkpoint_sha256"] in facts["reproduce"]
    assert facts["reproduce"].startswith("evalboard submit ./gpt-big --name gpt-big --suite language-core")
    assert "--precision bfloat16" in facts["reproduce"] and "--hardware gpu-h100" in facts["reproduce"]
    assert facts["samples_url"] == f"/api/v1/runs/{facts['run_id']}/samples.jsonl"
    assert client.get("/api/v1/models/999999").status_code == 404


def test_compare_gives_per_task_deltas_against_the_first_model(client, board_models):
    body = client.get("/api/v1/compare", params={"ids": f"{board_models['gpt-big']},{board_models['gpt-small']}"})
    assert body.status_code == 200, body.text
    body = body.json()
    assert [m["name"] for m in body["models"]] == ["gpt-big", "gpt-small"]
    facts = next(t for t in body["tasks"] if t["task"] == "world_facts")
    assert facts["models"][0]["delta"] == 0.0
    assert facts["models"][1]["delta"] == pytest.approx(0.2 - 0.8)
    overall = body["aggregates"][0]
    assert overall["aggregate"] == "overall" and overall["models"][1]["delta"] == pytest.approx(2 / 15 - 0.7)
    for ids in ("1", "1,2,3,4,5", "1,1", "a,b"):
        assert client.get("/api/v1/compare", params={"ids": ids}).status_code == 422


def test_queue_shows_live_runs_with_positions_and_failures_in_words(client):
    live = seed_submission("waiting", {"world_facts": Status.running, "arithmetic_mc": Status.queued})
    seed_submission("second", {"world_facts": Status.queued})
    seed_submission("broken", {"world_facts": Status.failed}, owner="dave")
    body = client.get("/api/v1/queue").json()
    assert [s["model"] for s in body["submissions"]] == ["waiting", "second"]
    runs = {r["task"]: r for r in body["submissions"][0]["runs"]}
    assert runs["world_facts"]["stage"] == "infer" and runs["world_facts"]["progress"] == 0.5
    assert runs["arithmetic_mc"]["queue_position"] == 0
    assert body["submissions"][1]["runs"][0]["queue_position"] == 1
    assert body["submissions"][0]["id"] == live
    assert body["hardware"]["cpu"]["queued"] == 2
    [failure] = body["failures"]
    assert failure["model"] == "broken" and "could not be loaded" in failure["error"]
    assert failure["error_kind"] == "user"


def test_suites_carry_dataset_manifests_and_aggregation_is_published(client):
    suite = next(s for s in client.get("/api/v1/suites").json() if s["name"] == "language-core")
    dataset = suite["tasks"][0]["dataset"]
    assert dataset["name"] == "world_facts" and len(dataset["splits"]["test"]["sha256"]) == 64
    formulas = client.get("/api/v1/aggregation").json()
    assert "(raw − random baseline) / (1 − random baseline)" in formulas["normalised"]
    assert formulas["draws"] >= 500


def test_a_model_measured_for_efficiency_only_still_has_its_points(client):
    seed_scored_model("only-fast", {}, efficiency={"tokens_per_s": 1200.0})
    body = client.get(f"{BOARD}/efficiency", params={"metric": "tokens_per_s"}).json()
    assert [(p["model"], p["value"], p["overall"]) for p in body["points"]] == [("only-fast", 1200.0, None)]


def test_a_result_finished_elsewhere_reaches_the_board_within_the_signature_ttl(client):
    # Workers write from other processes, so no commit here tells the board; the signature is
    # re-read at most once per SIGNATURE_TTL_S, and the new result shows after that.
    import time

    import psycopg

    from api.board import SIGNATURE_TTL_S
    from tests.conftest import DATABASE_URL

    seed_scored_model("first", {"world_facts": 0.5})
    assert names(client.get(BOARD)) == ["first"]
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:  # as another process would
        conn.execute("UPDATE model SET name = 'renamed'")
    deadline = time.monotonic() + SIGNATURE_TTL_S + 5
    while names(client.get(BOARD)) != ["renamed"]:
        assert time.monotonic() < deadline, "the board never saw the change"
        time.sleep(0.1)
