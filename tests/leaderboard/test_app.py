"""The Streamlit page, run by AppTest against a real API server on loopback."""
import html
import re

from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from tests.api.test_leaderboard import add_items, add_submission, full
from tests.conftest import ROOT, free_port
from tests.seed import seed_scored_model

APP = str(ROOT / "leaderboard" / "app.py")


def run_app(monkeypatch, url: str) -> AppTest:
    monkeypatch.setenv("EVALBOARD_API_URL", url)
    return AppTest.from_file(APP, default_timeout=30).run()


def test_ranked_models_with_their_scores(monkeypatch, api_url):
    seed_scored_model("strong-model", full(0.85))
    seed_scored_model("weak-model", full(0.30, arithmetic_mc=0.25))
    at = run_app(monkeypatch, api_url)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["model"]) == ["strong-model", "weak-model"]
    assert list(table["rank"]) == [1, 2]
    # normalised to chance (0.25 for multiple choice, 0 for free-form): 0.85 → 80.0 and 85.0
    assert table.loc[0, "understanding"] == 80.0 and table.loc[0, "generation"] == 85.0
    assert table.loc[0, "cognition"] == round(100 * (0.8 + 0.85 + 0.85) / 3, 1)


def test_empty_board_says_so(monkeypatch, api_url):
    at = run_app(monkeypatch, api_url)
    assert not at.exception
    assert "No models have been scored yet" in at.info[0].value


def test_api_down_is_explained_in_words(monkeypatch):
    at = run_app(monkeypatch, f"http://127.0.0.1:{free_port()}")
    assert not at.exception
    assert "cannot be reached" in at.error[0].value


def open_page(monkeypatch, url: str, page: str, **query) -> AppTest:
    monkeypatch.setenv("EVALBOARD_API_URL", url)
    at = AppTest.from_file(APP, default_timeout=30)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    return at.switch_page(f"views/{page}.py").run()


def rendered(markdown: str) -> str:
    """The HTML a CommonMark renderer makes of an element's Markdown source (what a visitor's browser gets)."""
    return MarkdownIt("commonmark").render(markdown)


def shown(markdown: str) -> str:
    """The text a visitor reads: the rendered HTML without its tags."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered(markdown))).strip()


def text_of(at: AppTest) -> str:
    return "\n".join(shown(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "title",
                                                 "header", "subheader") for e in getattr(at, kind))


def test_filters_search_and_raw_toggle(monkeypatch, api_url):
    seed_scored_model("strong-model", full(0.85))
    seed_scored_model("carols-model", full(0.55), owner="carol")
    at = run_app(monkeypatch, api_url)
    assert list(at.dataframe[0].value["model"]) == ["strong-model", "carols-model"]
    at.sidebar.text_input[0].input("owner:carol").run()
    assert list(at.dataframe[0].value["model"]) == ["carols-model"]
    at.sidebar.text_input[0].input("nothing-like-this").run()
    assert "No model matches" in at.info[0].value
    at.sidebar.text_input[0].input("").run()
    at.sidebar.toggle[0].set_value(False).run()
    assert at.dataframe[0].value.loc[0, "understanding"] == 85.0  # raw accuracy, in points
    table = at.dataframe[0].value
    assert {"overall_low", "overall_high"} <= set(table.columns)  # raw: no ranking (test_visitor_path)
    assert [b.label for b in at.get("download_button")] == ["Download CSV", "Download JSON", "Download Parquet"]


def test_model_page_shows_scores_provenance_and_samples(monkeypatch, api_url):
    model_id = seed_scored_model("strong-model", {"world_facts": 0.85, "arithmetic_mc": 0.70}, samples=6)
    at = open_page(monkeypatch, api_url, "model", model_id=str(model_id))
    assert not at.exception
    assert shown(at.header[0].value) == "strong-model"
    tasks = at.dataframe[0].value
    assert list(tasks["task"]) == ["world_facts", "arithmetic_mc"] and list(tasks["stderr"]) == [0.03, 0.03]
    assert at.code[0].value.startswith("evalboard submit ./strong-model --name strong-model")
    samples = at.dataframe[1].value
    assert len(samples) == 6
    at.checkbox[0].check().run()
    assert list(at.dataframe[1].value["index"]) == [0, 3]  # every third answer is wrong
    at.text_input[1].input("Question 3").run()
    assert list(at.dataframe[1].value["index"]) == [3]


def test_compare_page_shows_deltas(monkeypatch, api_url):
    a = seed_scored_model("strong-model", full(0.85))
    b = seed_scored_model("weak-model", full(0.25))
    at = open_page(monkeypatch, api_url, "compare", ids=f"{a},{b}")
    assert not at.exception
    tasks = at.dataframe[1].value
    assert tasks.loc[0, "strong-model"] == 80.0 and tasks.loc[0, "Δ weak-model"] == -80.0


def test_efficiency_page_explains_when_there_is_nothing_to_plot(monkeypatch, api_url):
    seed_scored_model("strong-model", {"world_facts": 0.85})
    at = open_page(monkeypatch, api_url, "efficiency")
    assert not at.exception
    assert "No efficiency measurements yet" in at.info[0].value


def test_efficiency_page_marks_the_pareto_front(monkeypatch, api_url):
    seed_scored_model("fast", {"world_facts": 0.55}, efficiency={"tokens_per_s": (900.0, 30.0)}, hardware_profile_id=3)
    seed_scored_model("good", {"world_facts": 0.85}, efficiency={"tokens_per_s": 100.0})
    seed_scored_model("neither", {"world_facts": 0.40}, efficiency={"tokens_per_s": 50.0})
    at = open_page(monkeypatch, api_url, "efficiency")
    assert not at.exception
    table = at.dataframe[0].value.set_index("model")
    assert table["pareto"].to_dict() == {"good": True, "fast": True, "neither": False}
    # Each figure with its dispersion and the profile it was measured on.
    assert table.loc["fast", "± stderr"] == 30.0 and table.loc["fast", "hardware profile"] == 3


def test_queue_page_shows_live_runs_and_failures(monkeypatch, api_url):
    from core.models import Status
    from tests.seed import seed_submission
    seed_submission("waiting-model", {"world_facts": Status.running, "arithmetic_mc": Status.queued})
    seed_submission("broken-model", {"world_facts": Status.failed})
    at = open_page(monkeypatch, api_url, "queue")
    assert not at.exception
    assert "waiting-model" in text_of(at)
    runs = at.dataframe[0].value
    assert list(runs["stage"]) == ["infer", "waiting"] and list(runs["queue position"])[1] == 0
    failures = at.dataframe[1].value
    assert "could not be loaded" in failures.loc[0, "reason"] and failures.loc[0, "whose fault"] == "the submission"


def test_queue_page_when_empty(monkeypatch, api_url):
    at = open_page(monkeypatch, api_url, "queue")
    assert "the queue is empty" in at.info[0].value and "No failed runs" in at.info[1].value


def test_about_page_lists_datasets_with_checksums_and_formulas(monkeypatch, api_url):
    at = open_page(monkeypatch, api_url, "about")
    assert not at.exception
    # One table per suite; find language-core's by its task.
    datasets = next(df.value for df in at.dataframe if "world_facts" in set(df.value.get("task", [])))
    facts = datasets.set_index("task").loc["world_facts"]
    assert facts["dataset"] == "world_facts" and facts["dataset version"] == "1.0"
    assert len(facts["test sha256"]) == 64
    assert "(raw − random baseline) / (1 − random baseline)" in text_of(at)


def test_every_page_explains_an_api_outage(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    for page in ("board", "model", "compare", "efficiency", "queue", "about"):
        at = open_page(monkeypatch, url, page)
        assert not at.exception, page
        assert "cannot be reached" in at.error[0].value, page


def test_model_and_compare_pages_on_an_empty_board(monkeypatch, api_url):
    for page in ("model", "compare"):
        at = open_page(monkeypatch, api_url, page)
        assert not at.exception
        assert "No models have been scored yet" in at.info[0].value


HOSTILE_LICENSE = "[x](http://evil.example) ![t](http://evil.example/t.png)"  # the column holds 64


def test_names_licences_and_flag_reasons_are_shown_as_text_never_markup(monkeypatch, api_url):
    """An author-chosen licence (stored before licences were SPDX-checked), owner and an admin's flag reason:
    every visitor sees the characters typed, and no link, image or auto-link is made of them."""
    import psycopg

    from tests.conftest import DATABASE_URL
    model_id = seed_scored_model("evil-model", {"world_facts": 0.85}, owner="www.evil.example/login",
                                 license=HOSTILE_LICENSE, flagged=True)
    reason = "see ![pixel](http://evil.example/p.png) or <b>http://evil.example/why</b> :red[**urgent**]"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("UPDATE model SET flag_reason = %s WHERE id = %s", (reason, model_id))
    at = open_page(monkeypatch, api_url, "model", model_id=str(model_id))
    assert not at.exception
    sources = [e.value for kind in ("header", "caption", "warning", "markdown") for e in getattr(at, kind)]
    for source in sources:
        assert "<a" not in rendered(source) and "<img" not in rendered(source), source
        # GFM auto-links (Streamlit's renderer has them) start at a literal `www.` or `://`; none is left.
        assert "www." not in source and "://" not in source, source
    text = text_of(at)
    assert f"license {HOSTILE_LICENSE}" in text
    assert "by www.evil.example/login" in text
    assert f"Flagged by an admin: {reason}." in text

    from core.models import Status
    from tests.seed import seed_submission
    seed_submission("queued-model", {"world_facts": Status.queued}, owner="**[owner](http://evil.example)**")
    queue_page = open_page(monkeypatch, api_url, "queue")
    assert not queue_page.exception
    line = next(e.value for e in queue_page.markdown if "queued" in shown(e.value))
    assert "<a" not in rendered(line) and "://" not in line
    assert "queued-model by **[owner](http://evil.example)**" in shown(line)


def test_csv_exports_defuse_spreadsheet_formulas(client):
    """A cell starting with = + - @ would run as a formula where the CSV is opened; it gets an apostrophe."""
    import csv
    import io
    seed_scored_model("formula-model", {"world_facts": 0.85}, owner="alice", license="=HYPERLINK(\"http://x\")")
    seed_scored_model("plain-model", {"world_facts": 0.20}, owner="@bob")
    response = client.get("/api/v1/leaderboard", params={"format": "csv",
                                                         "columns": "model,owner,license,overall"})
    rows = {row["model"]: row for row in csv.DictReader(io.StringIO(response.text))}
    assert rows["formula-model"]["license"] == "'=HYPERLINK(\"http://x\")"
    assert rows["plain-model"]["owner"] == "'@bob"
    assert float(rows["plain-model"]["overall"]) < 0  # a negative score is a number, left as it is


def test_the_board_has_a_track_selector_and_lists_partial_rows_unranked(monkeypatch, api_url):
    seed_scored_model("complete-model", full(0.85))
    partial = full(0.99)
    del partial["cipher_translation"], partial["word_problems"]
    seed_scored_model("cherry-picker", partial)
    seed_scored_model("clip-model", full(0.6, "clip-core"), family="clip", suite="clip-core", owner="carol")
    at = run_app(monkeypatch, api_url)
    assert not at.exception
    track = at.sidebar.selectbox[0]
    assert track.label == "Track" and track.value == "language-core@1.2"
    assert "clip-core@1.0 · clip · 1 rows" in track.options and "language-core@1.2 · causal-lm · 2 rows" in track.options
    assert list(at.dataframe[0].value["model"]) == ["complete-model"]  # ranked: covers every task
    assert "Not ranked: partial coverage" in [h.value for h in at.subheader]
    unranked = at.dataframe[1].value
    assert list(unranked["model"]) == ["cherry-picker"] and list(unranked["coverage"]) == ["5/7 tasks"]
    assert list(unranked["missing_tasks"]) == ["cipher_translation; word_problems"]
    track.set_value("clip-core@1.0").run()
    assert not at.exception
    assert list(at.dataframe[0].value["model"]) == ["clip-model"] and len(at.dataframe) == 1
    # A link names the track; a hostile or unknown one falls back on the default.
    for linked, expected in (("clip-core@1.0", "clip-model"), ("<script>", "complete-model")):
        monkeypatch.setenv("EVALBOARD_API_URL", api_url)
        page = AppTest.from_file(APP, default_timeout=30)
        page.query_params["track"] = linked
        page.run()
        assert not page.exception and list(page.dataframe[0].value["model"]) == [expected]


def test_compare_shows_the_paired_verdict_as_text(monkeypatch, api_url):
    import numpy as np
    hostile = "[x](http://evil.example)"
    a = seed_scored_model(hostile, full(0.85), stderr=0.01)
    b = seed_scored_model("weak-model", full(0.40), stderr=0.01)
    difficulty = np.random.default_rng(1).random(300)
    add_items(a, "world_facts", (difficulty < 0.85).astype(int))
    add_items(b, "world_facts", (difficulty < 0.40).astype(int))
    at = open_page(monkeypatch, api_url, "compare", ids=f"{a},{b}")
    assert not at.exception
    assert at.selectbox[0].label == "Track" and at.selectbox[0].value == "language-core@1.2"
    assert [h.value for h in at.subheader] == ["Aggregates", "Per task", "Paired verdicts"]
    verdict = at.success[0].value
    assert shown(verdict).startswith(f"{hostile} beats weak-model on overall: +")  # the name, as typed
    assert "<a" not in rendered(verdict) and "://" not in verdict
    assert any(shown(m.value).startswith(f"{hostile} beats weak-model on world_facts: +") for m in at.markdown)
    paired = at.dataframe[2].value.set_index("on")
    assert paired.loc["world_facts", "test"] == "McNemar chi-square (continuity corrected)"
    assert paired.loc["world_facts", "method"] == "paired bootstrap over items"
    assert paired.loc["cipher_translation", "method"] == "parametric (stderr)"


def test_compare_offers_each_precision_of_a_model_as_its_own_row(monkeypatch, api_url):
    model = seed_scored_model("dual", full(0.80))
    add_submission(model, full(0.70), precision="bfloat16")
    at = open_page(monkeypatch, api_url, "compare")
    assert not at.exception
    assert at.multiselect[0].value == [f"{model}:float32", f"{model}:bfloat16"]
    assert list(at.dataframe[0].value.columns) == ["aggregate", "dual (float32)", "dual (bfloat16)",
                                                   "Δ dual (bfloat16)"]


def test_about_page_renders_how_each_track_aggregates(monkeypatch, api_url):
    at = open_page(monkeypatch, api_url, "about")
    assert not at.exception
    tracks = next(df.value for df in at.dataframe if "track" in df.value.columns).set_index("track")
    language = tracks.loc["language-core@1.2"]
    assert language["capability weights"] == "understanding × 1, generation × 1, cognition × 1" or \
        set(language["capability weights"].split(", ")) == {"understanding × 1", "generation × 1", "cognition × 1"}
    assert language["contamination gap from"] == "weekday_reasoning"
    assert "world_facts" in language["required tasks"] and language["default for family"]
    assert "efficiency-cpu@1.0" not in tracks.index
    assert "Track language-core@1.2: ranked when a finished primary score for each of the 7 required tasks" \
        in text_of(at)


def test_the_model_page_finds_models_of_every_track(monkeypatch, api_url):
    clip = seed_scored_model("clip-model", full(0.6, "clip-core"), family="clip", suite="clip-core")
    at = open_page(monkeypatch, api_url, "model", model_id=str(clip))  # a link opens it on any track
    assert not at.exception and shown(at.header[0].value) == "clip-model"
    at = open_page(monkeypatch, api_url, "model")
    at.selectbox[0].set_value("clip-core@1.0").run()
    assert not at.exception and shown(at.header[0].value) == "clip-model"
