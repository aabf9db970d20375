"""The leaderboard endpoint and its companions (models, compare, queue, suites) on seeded data.

The board ranks one track (suite@version) at a time: rows seeded here cover every task of their
track unless a test is about partial coverage."""
import csv
import io
import json

import numpy as np
import pytest
from sqlmodel import select

from core.catalog import load_suites
from core.db import session_scope
from core.models import Precision, Run, Sample, Score, Status, Submission, utcnow
from tests.seed import seed_scored_model, seed_submission

BOARD = "/api/v1/leaderboard"
LANGUAGE = "language-core@1.2"
CLIP = "clip-core@1.0"


def tasks_of(suite: str) -> list:
    return list(load_suites()[suite].tasks)


def full(value: float, suite: str = "language-core", **overrides: float) -> dict[str, float]:
    """A score for every task of the suite's track (all `value`, but for `overrides`)."""
    return {**{t.name: value for t in tasks_of(suite)}, **overrides}


def overall(scores: dict[str, float], suite: str = "language-core") -> float:
    """The published aggregation, recomputed here: normalise, mean per capability, mean of capabilities."""
    by_capability: dict[str, list[float]] = {}
    for t in tasks_of(suite):
        if t.name in scores:
            by_capability.setdefault(t.capability, []).append(
                (scores[t.name] - t.random_baseline) / (1 - t.random_baseline))
    return float(np.mean([np.mean(v) for v in by_capability.values()]))


def add_submission(model_id: int, scores: dict[str, float], *, precision: str = "float32",
                   suite: str = "language-core", suite_version: str | None = "1.2", stderr: float = 0.03,
                   chat_template: bool = False) -> str:
    """Another finished submission of an existing model (another precision, another suite version…)."""
    with session_scope() as s:
        first = s.exec(select(Submission).where(Submission.model_id == model_id)).first()
        submission = Submission(model_id=model_id, checkpoint_id=first.checkpoint_id, submitted_by=first.submitted_by,
                                suite=suite, suite_version=suite_version, hardware_class="cpu",
                                precision=Precision(precision), status=Status.finished, finished_at=utcnow(),
                                chat_options={"apply_chat_template": chat_template, "fewshot_as_multiturn": False,
                                              "system_instruction": None})
        s.add(submission)
        s.flush()
        for task, value in scores.items():
            run = Run(submission_id=submission.id, task=task, capability="understanding", status=Status.finished,
                      finished_at=utcnow(), progress=1.0)
            s.add(run)
            s.flush()
            s.add(Score(run_id=run.id, metric="acc", value=value, stderr=stderr, n=200, primary=True))
        return str(submission.id)


def add_items(model_id: int, task: str, values, *, metric: str = "acc") -> None:
    """Per-item results for the model's run of `task` (item i is the same item for every model)."""
    with session_scope() as s:
        run = s.exec(select(Run).join(Submission, Submission.id == Run.submission_id)
                     .where(Submission.model_id == model_id, Run.task == task)).first()
        s.add_all(Sample(run_id=run.id, index=i, input=f"item {i}", target="A", prediction="A" if v else "B",
                         metrics={metric: float(v)}) for i, v in enumerate(values))
        run.finished_at = utcnow()  # as a worker's write: the board sees a change
        s.add(run)


def add_score(model_id: int, task: str, metric: str, value: float, stderr: float | None) -> None:
    with session_scope() as s:
        run = s.exec(select(Run).join(Submission, Submission.id == Run.submission_id)
                     .where(Submission.model_id == model_id, Run.task == task)).first()
        s.add(Score(run_id=run.id, metric=metric, value=value, stderr=stderr, n=200))
        run.finished_at = utcnow()
        s.add(run)


@pytest.fixture
def board_models() -> dict[str, int]:
    return {
        "gpt-big": seed_scored_model("gpt-big", full(0.85), params=7_000_000, precision="bfloat16",
                                     hardware_class="gpu-h100", license="Apache-2.0"),
        "gpt-small": seed_scored_model("gpt-small", full(0.40), params=1_000),
        "clip-b": seed_scored_model("clip-b", full(0.60, "clip-core"), owner="carol", family="clip",
                                    suite="clip-core", params=150_000),
        "sneaky": seed_scored_model("sneaky", full(0.99), flagged=True),
    }


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["model"] for r in response.json()["rows"]]


def test_board_ranks_one_track_by_overall_and_hides_flagged_models(client, board_models):
    body = client.get(BOARD).json()
    assert body["track"] == LANGUAGE
    assert [r["model"] for r in body["rows"]] == ["gpt-big", "gpt-small"]
    assert body["total"] == body["ranked"] == 2
    top = body["rows"][0]
    assert top["rank"] == 1 and top["overall"] == pytest.approx(overall(full(0.85)))
    assert top["coverage"] == "7/7 tasks" and top["missing_tasks"] == [] and top["track"] == LANGUAGE
    low, high = top["overall_ci"]
    assert low < top["overall"] < high
    assert set(top["capabilities_ci"]) == {"understanding", "generation", "cognition"}
    assert top["interval_method"] == "parametric (stderr)"  # no per-item results seeded
    assert names(client.get(BOARD, params={"include_flagged": True}))[0] == "sneaky"


def test_a_clip_model_never_appears_in_a_language_track(client, board_models):
    # Even one submitted against the language suite: a track is for its suite's family only.
    seed_scored_model("clip-in-disguise", full(0.99), family="clip", owner="mallory")
    for params in ({}, {"track": LANGUAGE}, {"track": "language-core"}, {"family": "causal-lm"},
                   {"q": "family:clip"}, {"track": LANGUAGE, "family": "clip"}, {"include_flagged": True}):
        body = client.get(BOARD, params=params).json()
        assert body["track"] == LANGUAGE, params
        assert all(r["family"] == "causal-lm" for r in body["rows"]), params
        assert "clip-b" not in names(client.get(BOARD, params=params))
        assert "clip-in-disguise" not in names(client.get(BOARD, params=params))
    clip = client.get(BOARD, params={"track": CLIP}).json()
    assert [(r["model"], r["rank"], r["coverage"]) for r in clip["rows"]] == [("clip-b", 1, "12/12 tasks")]
    exported = client.get(BOARD, params={"format": "csv", "columns": "model,family,track"})
    assert exported.headers["x-track"] == LANGUAGE
    assert {r["family"] for r in csv.DictReader(io.StringIO(exported.text))} == {"causal-lm"}


def test_the_default_track_follows_the_family(client, board_models):
    assert client.get(BOARD).json()["track"] == LANGUAGE
    assert client.get(BOARD, params={"family": "clip"}).json()["track"] == CLIP
    assert names(client.get(BOARD, params={"family": "clip"})) == ["clip-b"]
    assert client.get(BOARD, params={"family": "causal-lm,clip"}).json()["track"] == LANGUAGE
    facets = client.get(f"{BOARD}/facets", params={"family": "clip"}).json()
    assert facets["track"] == CLIP and facets["capabilities"] == ["multimodal"]
    defaults = {t["family"]: t["id"] for t in client.get(f"{BOARD}/facets").json()["tracks"] if t["default"]}
    assert defaults == {"causal-lm": LANGUAGE, "clip": CLIP}
    # A model's page shows its row on its own family's track.
    assert client.get(f"/api/v1/models/{board_models['clip-b']}").json()["board"]["track"] == CLIP


@pytest.mark.parametrize("track", ["nope@1.0", "language-core@9.9", "<script>alert(1)</script>",
                                   "language-core@1.2' OR '1'='1", "efficiency-cpu@1.0", "x" * 129])
def test_an_unknown_track_is_a_422_naming_the_tracks(client, board_models, track):
    response = client.get(BOARD, params={"track": track})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    if len(track) <= 128:
        assert LANGUAGE in response.json()["detail"] and CLIP in response.json()["detail"]
    assert client.get(f"{BOARD}/facets", params={"track": track}).status_code == 422
    assert client.get("/api/v1/compare", params={"ids": f"{board_models['gpt-big']},{board_models['gpt-small']}",
                                                 "track": track}).status_code == 422


def test_a_partial_model_is_listed_unranked_with_its_coverage(client, board_models):
    partial = full(0.99)
    del partial["cipher_translation"], partial["word_problems"]
    seed_scored_model("cherry-picker", partial)
    seed_scored_model("one-task", {"world_facts": 0.99})
    body = client.get(BOARD).json()
    assert [(r["model"], r["rank"], r["ranked"]) for r in body["rows"]] == [
        ("gpt-big", 1, True), ("gpt-small", 2, True), ("cherry-picker", None, False), ("one-task", None, False)]
    assert body["total"] == 4 and body["ranked"] == 2
    cherry = body["rows"][2]
    assert cherry["coverage"] == "5/7 tasks"
    assert cherry["missing_tasks"] == ["cipher_translation", "word_problems"]
    assert cherry["rank_range"] is None and cherry["band"] is None
    assert body["rows"][3]["coverage"] == "1/7 tasks"
    # Ranks and bands are over the complete rows only: the partial ones change nothing.
    assert [r["rank_range"] for r in body["rows"][:2]] == [[1, 1], [2, 2]]
    table = list(csv.DictReader(io.StringIO(client.get(BOARD, params={
        "format": "csv", "columns": "rank,model,coverage,missing_tasks"}).text)))
    assert table[2] == {"rank": "", "model": "cherry-picker", "coverage": "5/7 tasks",
                        "missing_tasks": "cipher_translation; word_problems"}


def test_a_row_never_merges_two_submissions(client):
    # Two submissions of one model at one precision, each partial: still unranked, not merged into 7/7.
    model = seed_scored_model("split", {t: 0.8 for t in list(full(0.8))[:4]})
    add_submission(model, {t: 0.8 for t in list(full(0.8))[4:]})
    [row] = client.get(BOARD).json()["rows"]
    assert (row["rank"], row["coverage"]) == (None, "4/7 tasks")
    # A complete submission ranks, whichever is later.
    add_submission(model, full(0.6))
    [row] = client.get(BOARD).json()["rows"]
    assert (row["rank"], row["coverage"], row["overall"]) == (1, "7/7 tasks", pytest.approx(overall(full(0.6))))


def test_two_precisions_of_one_model_are_two_labelled_rows(client):
    model = seed_scored_model("dual", full(0.80), precision="float32")
    add_submission(model, full(0.70), precision="bfloat16")
    seed_scored_model("other", full(0.75))
    rows = client.get(BOARD).json()["rows"]
    assert [(r["model"], r["precision"], r["rank"]) for r in rows] == [
        ("dual", "float32", 1), ("other", "float32", 2), ("dual", "bfloat16", 3)]
    assert [r["row_id"] for r in rows] == [f"{model}:float32", rows[1]["row_id"], f"{model}:bfloat16"]
    assert names(client.get(BOARD, params={"precision": "bfloat16"})) == ["dual"]
    # Compare can name each precision of the model.
    body = client.get("/api/v1/compare", params={"ids": f"{model}:float32,{model}:bfloat16"}).json()
    assert [m["precision"] for m in body["models"]] == ["float32", "bfloat16"]
    assert body["paired"][0]["differences"][0]["verdict"].startswith(
        "dual (float32) beats dual (bfloat16) on overall: +")
    for bad in (f"{model}:float64", f"{model}:float32,{model}:float32", f"{model}:<b>"):
        assert client.get("/api/v1/compare", params={"ids": bad}).status_code == 422


def test_a_chat_template_run_is_its_own_row(client):
    model = seed_scored_model("instruct", full(0.70))
    add_submission(model, full(0.80), chat_template=True)
    rows = client.get(BOARD).json()["rows"]
    assert [(r["row_id"], r["chat_template"], r["rank"]) for r in rows] == [
        (f"{model}:float32:chat", True, 1), (f"{model}:float32", False, 2)]
    body = client.get("/api/v1/compare", params={"ids": f"{model}:float32:chat,{model}:float32"}).json()
    assert body["paired"][0]["model"] == "instruct (float32)"
    assert body["paired"][0]["reference"] == "instruct (float32, chat template)"
    for bad in (f"{model}:float32:json", f"{model}::chat", f"{model}:chat"):
        assert client.get("/api/v1/compare", params={"ids": bad}).status_code == 422


def test_scores_of_another_suite_version_are_on_no_track(client):
    model = seed_scored_model("current", full(0.5))
    add_submission(model, full(0.95), suite_version="1.1")  # ran before the suite changed
    [row] = client.get(BOARD).json()["rows"]
    assert row["overall"] == pytest.approx(overall(full(0.5)))


def test_the_contamination_gap_is_a_column_of_tracks_that_report_it(client):
    model = seed_scored_model("contaminated", full(0.8))
    add_score(model, "weekday_reasoning", "contamination_gap", 0.12, 0.04)
    seed_scored_model("clean", full(0.7))
    rows = client.get(BOARD).json()["rows"]
    assert [(r["model"], r["contamination_gap"], r["contamination_gap_stderr"]) for r in rows] == [
        ("contaminated", 0.12, 0.04), ("clean", None, None)]
    table = list(csv.DictReader(io.StringIO(client.get(BOARD, params={
        "format": "csv", "columns": "model,contamination_gap,contamination_gap_stderr"}).text)))
    assert table[0] == {"model": "contaminated", "contamination_gap": "12.0", "contamination_gap_stderr": "4.0"}
    assert "contamination_gap" in client.get(f"{BOARD}/facets").json()["columns"]
    assert "contamination_gap" not in client.get(f"{BOARD}/facets", params={"track": CLIP}).json()["columns"]


def test_tracks_publish_their_rules_and_counts(client, board_models):
    seed_scored_model("partial", {"world_facts": 0.5})
    tracks = {t["id"]: t for t in client.get(f"{BOARD}/tracks").json()}
    assert set(tracks) == {LANGUAGE, "language-open@1.0", "language-open-v2@2.0", "language-zh@1.0", CLIP,
                           "clip-open@1.0"}  # efficiency is its own view
    language = tracks[LANGUAGE]
    assert (language["ranked"], language["unranked"]) == (2, 1)
    assert language["required_tasks"] == [t.name for t in tasks_of("language-core")]
    assert language["capability_weights"] == {"cognition": 1.0, "generation": 1.0, "understanding": 1.0}
    assert language["contamination_tasks"] == ["weekday_reasoning"]
    assert tracks[CLIP]["default_for_family"] and tracks[CLIP]["ranked"] == 1


def test_filters_narrow_the_board_without_changing_ranks(client, board_models):
    seed_scored_model("gpt-mid", full(0.6), params=150_000, owner="carol")
    assert [(r["model"], r["rank"]) for r in client.get(BOARD, params={"q": "owner:carol"}).json()["rows"]] == [
        ("gpt-mid", 2)]
    assert names(client.get(BOARD, params={"params_min": 100_000})) == ["gpt-big", "gpt-mid"]
    assert names(client.get(BOARD, params={"params_max": 150_000})) == ["gpt-mid", "gpt-small"]
    assert names(client.get(BOARD, params={"precision": "bfloat16"})) == ["gpt-big"]
    assert names(client.get(BOARD, params={"hardware_class": "cpu"})) == ["gpt-mid", "gpt-small"]
    assert names(client.get(BOARD, params={"license": "Apache-2.0,MIT"})) == ["gpt-big", "gpt-mid", "gpt-small"]


def test_search_matches_names_and_fields(client, board_models):
    assert names(client.get(BOARD, params={"q": "gpt"})) == ["gpt-big", "gpt-small"]
    assert names(client.get(BOARD, params={"q": "family:clip", "track": CLIP})) == ["clip-b"]
    assert names(client.get(BOARD, params={"q": "owner:carol", "track": CLIP})) == ["clip-b"]
    assert names(client.get(BOARD, params={"q": "owner:alice small"})) == ["gpt-small"]
    bad = client.get(BOARD, params={"q": "colour:red"})
    assert bad.status_code == 422 and "unknown search field 'colour'" in bad.json()["detail"]


def test_sort_and_pages(client, board_models):
    seed_scored_model("gpt-mid", full(0.6), params=150_000)
    assert names(client.get(BOARD, params={"sort": "params"})) == ["gpt-small", "gpt-mid", "gpt-big"]
    assert names(client.get(BOARD, params={"sort": "-params", "limit": 1, "offset": 1})) == ["gpt-mid"]
    assert names(client.get(BOARD, params={"sort": "task:world_facts"})) == ["gpt-small", "gpt-mid", "gpt-big"]
    assert names(client.get(BOARD, params={"sort": "-cognition"})) == ["gpt-big", "gpt-mid", "gpt-small"]
    assert client.get(BOARD, params={"sort": "shoe_size"}).status_code == 422
    assert client.get(BOARD, params={"sort": "multimodal"}).status_code == 422  # not a column of this track


def test_raw_view_reports_raw_means_in_the_same_order(client, board_models):
    rows = client.get(BOARD, params={"normalised": False}).json()["rows"]
    assert [r["model"] for r in rows] == ["gpt-big", "gpt-small"]
    assert rows[0]["overall"] == pytest.approx(0.85)
    assert rows[0]["capabilities"]["understanding"] == pytest.approx(0.85)


def test_csv_and_json_export_are_the_rows_the_board_shows(client, board_models):
    params = {"q": "gpt", "columns": "rank,model,overall,overall_low,overall_high,understanding,task:world_facts"}
    exported = client.get(BOARD, params={**params, "format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["x-total-count"] == "2"
    assert 'filename="evalboard-language-core.csv"' in exported.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(table[0]) == params["columns"].split(",")
    assert [(r["rank"], r["model"], r["overall"], r["understanding"], r["task:world_facts"]) for r in table] == [
        ("1", "gpt-big", str(round(100 * overall(full(0.85)), 1)), "80.0", "80.0"),
        ("2", "gpt-small", str(round(100 * overall(full(0.40)), 1)), "20.0", "20.0")]
    records = json.loads(client.get(BOARD, params={**params, "format": "json"}).text)
    assert [str(r["overall"]) for r in records] == [r["overall"] for r in table]
    assert records[0]["overall_low"] < records[0]["overall"] < records[0]["overall_high"]
    assert client.get(BOARD, params={"format": "csv", "columns": "model,nope"}).status_code == 422
    clip = client.get(BOARD, params={"format": "csv", "track": CLIP, "columns": "model,multimodal"})
    assert list(csv.DictReader(io.StringIO(clip.text))) == [{"model": "clip-b", "multimodal": str(round(
        100 * overall(full(0.60, "clip-core"), "clip-core"), 1))}]


def test_close_models_share_a_rank_band(client):
    seed_scored_model("a", full(0.80), stderr=0.08)
    seed_scored_model("b", full(0.79), stderr=0.08)
    seed_scored_model("c", full(0.40), stderr=0.08)
    rows = client.get(BOARD).json()["rows"]
    assert [(r["model"], r["band"], r["rank_range"]) for r in rows] == [
        ("a", 1, [1, 2]), ("b", 1, [1, 2]), ("c", 2, [3, 3])]
    records = json.loads(client.get(BOARD, params={"format": "json", "columns": "model,rank_range"}).text)
    assert records == [{"model": "a", "rank_range": "1-2"}, {"model": "b", "rank_range": "1-2"},
                       {"model": "c", "rank_range": "3"}]


def test_the_board_follows_new_results(client):
    seed_scored_model("first", full(0.5))
    assert names(client.get(BOARD)) == ["first"]
    seed_scored_model("second", full(0.9))
    assert names(client.get(BOARD)) == ["second", "first"]


def test_facets_and_empty_board(client, board_models):
    facets = client.get(f"{BOARD}/facets").json()
    assert facets["families"] == ["causal-lm"]
    assert facets["capabilities"] == ["understanding", "generation", "cognition"]
    assert facets["params_min"] == 1_000 and facets["params_max"] == 7_000_000
    assert facets["flagged"] == 1
    assert "task:world_facts" in facets["columns"] and "coverage" in facets["columns"]


def test_empty_board(client):
    body = client.get(BOARD).json()
    assert body["rows"] == [] and body["total"] == 0
    assert client.get(BOARD, params={"format": "csv"}).text.startswith("rank,rank_range,band,row_id,model_id,model")


def test_efficiency_points_carry_the_overall_score_dispersion_and_profile(client):
    seed_scored_model("fast", full(0.6), efficiency={"tokens_per_s": (900.0, 25.0), "latency_p50_ms": 12.0},
                      hardware_profile_id=7)
    seed_scored_model("slow", full(0.8))
    body = client.get(f"{BOARD}/efficiency", params={"metric": "tokens_per_s"}).json()
    assert body["metrics"] == ["latency_p50_ms", "tokens_per_s"]
    assert [(p["model"], p["value"], p["overall"]) for p in body["points"]] == [
        ("fast", 900.0, pytest.approx(overall(full(0.6))))]
    (point,) = body["points"]
    assert (point["stderr"], point["n"], point["hardware_profile_id"]) == (25.0, 40, 7)
    # Efficiency is shown beside the scores, never averaged into them.
    row = client.get(BOARD).json()["rows"][1]
    assert row["model"] == "fast" and set(row["capabilities"]) == {"understanding", "generation", "cognition"}
    assert row["efficiency"] == {"tokens_per_s": 900.0, "latency_p50_ms": 12.0}


def test_model_detail_has_scores_provenance_and_a_reproduce_command(client, board_models):
    body = client.get(f"/api/v1/models/{board_models['gpt-big']}").json()
    assert body["model"]["name"] == "gpt-big" and body["board"]["rank"] == 1
    assert body["board"]["track"] == LANGUAGE and body["board"]["coverage"] == "7/7 tasks"
    tasks = {t["task"]: t for t in body["tasks"]}
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
    assert body["track"] == LANGUAGE
    assert [m["name"] for m in body["models"]] == ["gpt-big", "gpt-small"]
    facts = next(t for t in body["tasks"] if t["task"] == "world_facts")
    assert facts["models"][0]["delta"] == 0.0
    assert facts["models"][1]["delta"] == pytest.approx(0.2 - 0.8)
    total = body["aggregates"][0]
    assert total["aggregate"] == "overall"
    assert total["models"][1]["delta"] == pytest.approx(overall(full(0.40)) - overall(full(0.85)))
    # Without per-item results the paired section says it fell back on the stderrs.
    first = body["paired"][0]["differences"][0]
    assert first["name"] == "overall" and first["method"] == "parametric (stderr)"
    assert first["verdict"].startswith("gpt-big beats gpt-small on overall: +")
    for ids in ("1", "1,2,3,4,5", "1,1", "a,b", "1;DROP TABLE model", "-1,2"):
        assert client.get("/api/v1/compare", params={"ids": ids}).status_code == 422
    # A model of another family has no row on the language track: said, not guessed.
    other = client.get("/api/v1/compare", params={"ids": f"{board_models['gpt-big']},{board_models['clip-b']}"})
    assert other.status_code == 422 and "no row" in other.json()["detail"] and LANGUAGE in other.json()["detail"]
    assert client.get("/api/v1/compare", params={"ids": f"{board_models['gpt-big']},999999"}).status_code == 404
    # A flagged model can be compared (it is on the track, shown only on request).
    flagged = client.get("/api/v1/compare", params={"ids": f"{board_models['sneaky']},{board_models['gpt-big']}"})
    assert flagged.status_code == 200 and flagged.json()["models"][0]["flagged"]


def test_compare_pairs_per_item_results_and_tests_them(client):
    rng = np.random.default_rng(7)
    n = 400
    difficulty = rng.random(n)
    strong_items = (difficulty < 0.75).astype(int)  # B's right answers are a subset of A's:
    weak_items = (difficulty < 0.65).astype(int)    # A wins 10% of the items, B none
    scores_a = full(0.75, cipher_translation=0.5)
    scores_b = full(0.65, cipher_translation=0.5)
    scores_a["world_facts"], scores_b["world_facts"] = strong_items.mean(), weak_items.mean()
    a = seed_scored_model("A", scores_a)
    b = seed_scored_model("B", scores_b)
    add_items(a, "world_facts", strong_items)
    add_items(b, "world_facts", weak_items)
    body = client.get("/api/v1/compare", params={"ids": f"{a},{b}"}).json()
    # Each row against the first: B − A, and the verdict names the winner first.
    assert (body["paired"][0]["model"], body["paired"][0]["reference"]) == ("B", "A")
    differences = {d["name"]: d for d in body["paired"][0]["differences"]}
    facts = differences["world_facts"]
    assert facts["method"] == "paired bootstrap over items" and facts["items"] == n
    assert facts["test"] == "McNemar chi-square (continuity corrected)" and facts["p_value"] < 1e-6
    assert facts["difference"] == pytest.approx(-(strong_items.mean() - weak_items.mean()) / 0.75)
    assert facts["ci"][1] < 0
    assert facts["verdict"].startswith(f"A beats B on world_facts: {-facts['difference']:+.2f} [")
    cipher = differences["cipher_translation"]
    assert cipher["method"] == "parametric (stderr)" and cipher["difference"] == pytest.approx(0.0)
    assert cipher["verdict"].startswith("B and A are not distinguishable on cipher_translation: +0.00")
    assert differences["understanding"]["method"].startswith("paired bootstrap over items; parametric")
    # The board's interval for A uses the items where it has them.
    row = next(r for r in client.get(BOARD).json()["rows"] if r["model"] == "A")
    assert row["interval_method"].startswith("paired bootstrap over items; parametric (stderr) for ")
    exported = json.loads(client.get(BOARD, params={"format": "json", "columns": "model,interval_method"}).text)
    assert exported[0]["interval_method"] == row["interval_method"]


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
    assert suite["aggregation"]["required_tasks"] == "all"
    formulas = client.get("/api/v1/aggregation").json()
    assert "(raw − random baseline) / (1 − random baseline)" in formulas["normalised"]
    assert "paired" in formulas["interval"] and "unranked" in formulas["coverage"]
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

    from api.board_snapshot import CHECK_EVERY_S as SIGNATURE_TTL_S
    from tests.conftest import DATABASE_URL

    seed_scored_model("first", {"world_facts": 0.5})
    assert names(client.get(BOARD)) == ["first"]
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:  # as another process would
        conn.execute("UPDATE model SET name = 'renamed'")
    deadline = time.monotonic() + SIGNATURE_TTL_S + 5
    while names(client.get(BOARD)) != ["renamed"]:
        assert time.monotonic() < deadline, "the board never saw the change"
        time.sleep(0.1)
