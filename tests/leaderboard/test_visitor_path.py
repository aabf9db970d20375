"""Issue 19's visitor path, page by page in AppTest against the real API: the board reads at a glance (7),
the raw/normalised toggle is consistent (8), the Model and Compare pages (9), the Queue page (10) and the
Efficiency page's empty state (11)."""
import io
import json
import re
from urllib.parse import quote, unquote

import pyarrow as pa
import pytest

from leaderboard.ui import MODEL_LINK_TEXT, humanise_count
from tests.api.test_leaderboard import full
from tests.leaderboard.test_app import open_page, run_app, shown
from tests.seed import seed_scored_model

PLUS_MINUS = re.compile(r"^\d+\.\d ± \d+\.\d$")


def config_of(table) -> dict:
    return json.loads(table.proto.columns)


def charts(at) -> list[dict]:
    """Each Vega-Lite chart on the page: its spec and its datasets as frames."""
    out = []
    for chart in at.get("vega_lite_chart"):
        frames = [pa.ipc.open_stream(io.BytesIO(d.data.data)).read_pandas() for d in chart.proto.datasets]
        out.append({"spec": json.loads(chart.proto.spec), "data": frames})
    return out


def link_text(link: str) -> str:
    """What the grid shows for a link cell: the display regex's group, percent-decoded."""
    return unquote(re.match(MODEL_LINK_TEXT, link).group(1))


# ---- 7. the board reads at a glance ----------------------------------------------------------------

def test_the_board_reads_at_a_glance(monkeypatch, api_url):
    strong = seed_scored_model("strong-model", full(0.85), params=7_200_000_000)
    hostile = "[x](javascript:alert(1)) #a/b+c"
    weak = seed_scored_model(hostile, full(0.30), params=None)
    at = run_app(monkeypatch, api_url)
    assert not at.exception
    table = at.dataframe[0]
    order = list(table.proto.column_order)
    # Few columns: identity, band, overall with its interval in one cell, the capabilities, then details.
    assert order == ["rank", "model_page", "band", "overall (95%)", "understanding", "generation", "cognition",
                     "contamination gap", "params", "precision", "owner", "rank_range"]
    config = config_of(table)
    assert config["rank"]["pinned"] and config["model_page"]["pinned"]  # in view when the grid scrolls
    assert config["params"]["type_config"]["format"] == "compact"  # 7.2B
    assert all(config[c]["type_config"]["format"] == "%.1f" for c in ("understanding", "overall_low"))
    assert table.proto.placeholder == ""  # an empty cell stays empty, not `None`
    rows = table.value.set_index("model_id")
    assert PLUS_MINUS.match(rows.loc[strong, "overall (95%)"])
    value, spread = map(float, rows.loc[strong, "overall (95%)"].split(" ± "))
    assert value == rows.loc[strong, "overall"]
    assert spread == pytest.approx((rows.loc[strong, "overall_high"] - rows.loc[strong, "overall_low"]) / 2, abs=0.051)
    # Names link to their Model page; the id alone decides where, the name is only the text shown.
    assert rows.loc[weak, "model_page"] == f"model?model_id={weak}#{quote(hostile, safe='')}"
    assert link_text(rows.loc[weak, "model_page"]) == hostile
    assert link_text(rows.loc[strong, "model_page"]) == "strong-model"
    # Above the table, a chart of the top rows' overall with its interval.
    kinds = [type(e).__name__ if not hasattr(e, "type") else e.type for e in at.main]
    assert kinds.index("vega_lite_chart") < kinds.index("dataframe")
    (chart,) = charts(at)
    data = next(f for f in chart["data"] if "overall_low" in f)
    assert list(data["row"]) == ["1. strong-model", f"2. {hostile}"]
    assert (data["overall_low"] < data["overall"]).all() and (data["overall"] < data["overall_high"]).all()


def test_partial_rows_show_blank_cells_not_none(monkeypatch, api_url):
    seed_scored_model("complete-model", full(0.85))
    seed_scored_model("partial-model", {"world_facts": 0.5})
    at = run_app(monkeypatch, api_url)
    assert not at.exception
    partial = at.dataframe[1]
    assert partial.proto.placeholder == ""
    assert link_text(partial.value["model_page"].iloc[0]) == "partial-model"


# ---- 8. the raw/normalised toggle ------------------------------------------------------------------

# Multiple-choice tasks (chance 0.25) lift raw means more than normalised ones: the two orders differ.
MC_HEAVY = full(0.20, world_facts=0.70, reading_comprehension=0.70, arithmetic_mc=0.70)  # raw 42.2, normalised 37.8
EVEN = full(0.45)  # raw 45.0, normalised 36.9


def test_the_raw_toggle_orders_captions_and_hides_the_normalised_ranking(monkeypatch, api_url):
    seed_scored_model("mc-heavy", MC_HEAVY)
    seed_scored_model("even", EVEN)
    at = run_app(monkeypatch, api_url)
    table = at.dataframe[0].value
    assert list(table["model"]) == ["mc-heavy", "even"] and list(table["rank"]) == [1, 2]
    assert "normalised points" in " ".join(c.value for c in at.caption)
    at.sidebar.toggle[0].set_value(False).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["model"]) == ["even", "mc-heavy"]  # by raw overall, high first
    assert table["overall"].is_monotonic_decreasing and table.loc[0, "overall"] == 45.0
    order = list(at.dataframe[0].proto.column_order)
    assert not {"rank", "band", "rank_range"} & set(order)  # the normalised ranking is not shown beside raw means
    sort = next(s for s in at.selectbox if s.label == "Sort by")
    assert "rank" not in sort.options and sort.value == "-overall"
    captions = " ".join(c.value for c in at.caption)
    assert "ordered by raw overall" in captions and "not ranked" in captions
    (chart,) = charts(at)
    data = next(f for f in chart["data"] if "overall_low" in f)
    assert list(data["row"]) == ["even", "mc-heavy"]  # no rank numbers on raw means
    at.sidebar.toggle[0].set_value(True).run()
    assert list(at.dataframe[0].value["rank"]) == [1, 2] and "rank" in at.dataframe[0].proto.column_order


# ---- 9. Model and Compare pages --------------------------------------------------------------------

@pytest.mark.parametrize("count, text", [(141_000, "141K"), (7_200_000_000, "7.2B"), (999_999, "1M"),
                                         (950, "950"), (1_500_000, "1.5M"), (None, "unknown")])
def test_parameter_counts_are_humanised(count, text):
    assert humanise_count(count) == text


def test_the_model_page_shows_a_labelled_radar_humane_counts_and_intervals(monkeypatch, api_url):
    model_id = seed_scored_model("strong-model", full(0.85), params=7_200_000_000)
    seed_scored_model("weak-model", full(0.30))
    at = open_page(monkeypatch, api_url, "model", model_id=str(model_id))
    assert not at.exception
    assert "7.2B parameters" in shown(at.caption[0].value)
    overall = next(m for m in at.metric if m.label == "Overall (points)")
    assert PLUS_MINUS.match(overall.value)
    captions = [shown(c.value) for c in at.caption]
    assert any(re.match(r"95% interval \d+\.\d to \d+\.\d", c) for c in captions)  # on the page, not a tooltip
    assert any(c.startswith("could hold ranks 1–") for c in captions)
    radar, intervals = charts(at)[:2]
    ring_text = {str(t) for f in radar["data"] if "text" in f for t in f["text"]}
    assert {"25", "50", "75", "100"} <= ring_text  # the scale is written on the radar
    capabilities = next(f for f in intervals["data"] if "capability" in f)
    assert set(capabilities["capability"]) == {"understanding", "generation", "cognition"}
    assert (capabilities["low"] <= capabilities["score"]).all() and (capabilities["score"] <= capabilities["high"]).all()


def test_a_clip_model_gets_a_per_task_chart_in_its_metrics(monkeypatch, api_url):
    clip = seed_scored_model("clip-model", full(0.6, "clip-core"), family="clip", suite="clip-core")
    at = open_page(monkeypatch, api_url, "model", model_id=str(clip))
    assert not at.exception
    per_task = next(c for c in charts(at) if any("task" in f for f in c["data"]))
    frame = next(f for f in per_task["data"] if "task" in f)
    assert len(frame) == len(full(0.6, "clip-core")) and set(frame["score"]) == {60.0}
    assert (frame["low"] < 60).all() and (frame["high"] > 60).all()  # ± 1.96 stderr
    assert set(frame["chance"]) == {4.2, 10.0, 2.2, 16.7}  # each task's chance level, drawn as a tick
    assert at.selectbox[0].value == "clip-core@1.0"  # the link opened on the model's own track


def test_compare_opens_on_the_linked_models_track_with_a_chart_of_intervals(monkeypatch, api_url):
    seed_scored_model("language-model", full(0.7))
    clip = seed_scored_model("clip-a", full(0.6, "clip-core"), family="clip", suite="clip-core")
    other = seed_scored_model("clip-b", full(0.4, "clip-core"), family="clip", suite="clip-core")
    at = open_page(monkeypatch, api_url, "compare", ids=str(clip))  # the Model page's link, one model
    assert not at.exception
    assert at.selectbox[0].value == "clip-core@1.0"
    assert [r.split(":")[0] for r in at.multiselect[0].value] == [str(clip), str(other)]
    chart = next(c for c in charts(at) if any("aggregate" in f for f in c["data"]))
    frame = next(f for f in chart["data"] if "aggregate" in f)
    assert set(frame["row"]) == {"clip-a", "clip-b"} and set(frame["aggregate"]) == {"overall", "multimodal"}
    assert (frame["low"] <= frame["score"]).all() and (frame["score"] <= frame["high"]).all()
    assert (frame["low"] < frame["high"]).any()


def test_the_model_page_links_to_compare_on_its_track(monkeypatch, api_url):
    model_id = seed_scored_model("strong-model", full(0.85))
    at = open_page(monkeypatch, api_url, "model", model_id=str(model_id))
    link = at.get("page_link")[0].proto
    assert link.page.endswith("compare") or "compare" in link.page
    assert f"ids={model_id}" in link.query_string and "language-core" in unquote(link.query_string)


# ---- 10. the Queue page and a missing model ------------------------------------------------------

def test_the_queue_refreshes_itself_and_finished_runs_read_as_done(monkeypatch, api_url):
    from core.models import Status
    from tests.seed import seed_submission
    seed_submission("busy-model", {"world_facts": Status.finished, "arithmetic_mc": Status.running})
    at = open_page(monkeypatch, api_url, "queue")
    assert not at.exception
    runs = at.dataframe[0].value
    assert list(runs["status"]) == ["✓ finished", "▶ running"]
    assert not any("failed" in s for s in runs["status"])
    assert any("refreshes itself every 5 s while runs wait or run" in c.value for c in at.caption)


def test_an_idle_queue_still_refreshes_now_and_then(monkeypatch, api_url):
    at = open_page(monkeypatch, api_url, "queue")
    assert not at.exception
    assert any("refreshes itself every 30 s" in c.value for c in at.caption)


def test_a_missing_model_says_there_is_no_such_model(monkeypatch, api_url):
    seed_scored_model("strong-model", full(0.85))
    at = open_page(monkeypatch, api_url, "model", model_id="999")
    assert not at.exception and not at.error
    assert shown(at.warning[0].value) == "No model 999."


# ---- 11. the Efficiency page when empty ------------------------------------------------------------

def test_the_empty_efficiency_page_says_how_to_get_figures(monkeypatch, api_url):
    seed_scored_model("strong-model", full(0.85))
    at = open_page(monkeypatch, api_url, "efficiency")
    assert not at.exception
    assert "`efficiency-cpu`" in at.info[0].value and "`efficiency-clip-cpu`" in at.info[0].value
    commands = at.code[0].value.splitlines()
    assert commands[0].startswith("evalboard submit ") and "--suite efficiency-cpu" in commands[0]
    assert "--suite efficiency-clip-cpu --family clip" in commands[1]
