"""The ranked board of one track: track selector, filters, search, raw/normalised toggle, column picker,
downloads, and the rows not ranked for want of coverage."""
import io

import pandas as pd
import streamlit as st

from leaderboard.charts import interval_chart
from leaderboard.ui import (
    MODEL_LINK_TEXT,
    NO_MODELS,
    client,
    fetch,
    model_page_link,
    plus_minus,
    table,
    with_interval,
)

PAGE_SIZE = 100
EXPORT_LIMIT = 10_000
TOP_CHARTED = 10
IDENTITY = ["rank", "model", "band", "overall"]
DETAILS = ["params", "precision", "owner", "rank_range"]
# Always fetched: they decide which table a row goes to, say what an unranked row lacks, link the model
# page and draw the chart of the top rows.
ALWAYS = ["model_id", "model", "precision", "rank", "band", "coverage", "missing_tasks",
          "overall", "overall_low", "overall_high"]
# Shown only beside the normalised scores: the ranking is defined on them (see the caption in raw mode).
RANKING = ["rank", "rank_range", "band"]

# Picked columns that the table shows in another form: the name as a link to its Model page, a score
# with its interval as one `23.2 ± 2.5` cell.
DISPLAYED = {"model": "model_page", "overall": "overall (95%)", "contamination_gap": "contamination gap"}
COVERAGE_ONLY = ("coverage", "missing_tasks")


def column_config(columns: list[str]) -> dict:
    """Ranks as integers, parameter counts humanised (141K, 7.2B), scores with one decimal, names as links;
    rank and name pinned, so they stay in view when the table scrolls sideways."""
    config = {"rank": st.column_config.NumberColumn("rank", format="%d", width="small", pinned=True),
              "model_page": st.column_config.LinkColumn("model", display_text=MODEL_LINK_TEXT, pinned=True,
                                                        help="opens the model's page"),
              "band": st.column_config.NumberColumn("band", format="%d", width="small",
                                                    help="models in one band are not significantly different"),
              "rank_range": st.column_config.TextColumn("rank range", width="small"),
              "precision": st.column_config.TextColumn("precision", width="small"),
              "owner": st.column_config.TextColumn("owner", width="small"),
              "contamination gap": st.column_config.TextColumn(
                  "contamination gap", width="small",
                  help="score on the bundled set minus a fresh draw, ± its standard error (points)"),
              "params": st.column_config.NumberColumn("params", format="compact", width="small"),
              "overall (95%)": st.column_config.TextColumn("overall ± 95%", help="± half the 95% interval")}
    for column in columns:  # every score in points, with one decimal (an efficiency figure keeps its own)
        if column not in config and not column.startswith("eff:") and column not in (
                "model_id", "rank", "band", "params", "row_id"):
            config[column] = st.column_config.NumberColumn(column, format="%.1f")
    return config


api = client()
st.title("Evalboard")
st.caption("Community evaluation leaderboard, one **track** (a suite at one version) at a time: a ranking never "
           "mixes suites, versions or precisions, and a model is ranked only with a score for every task of the "
           "track. Models in one **band** are not significantly different; **rank range** is the ranks a model "
           "held across the bootstrap draws.")
default = fetch(api.facets, "leaderboard")
if not any(t["rows"] for t in default["tracks"]):
    st.info(NO_MODELS)
    st.stop()

with st.sidebar:
    track_ids = [t["id"] for t in default["tracks"]]
    families = {t["id"]: t["family"] for t in default["tracks"]}
    counts = {t["id"]: t["rows"] for t in default["tracks"]}
    # ?track=clip-core@1.0 links straight to a track; anything else falls back on the default one.
    linked = st.query_params.get("track")
    track = st.selectbox("Track", track_ids, index=track_ids.index(linked if linked in track_ids else default["track"]),
                         format_func=lambda t: f"{t} · {families[t]} · {counts[t]} rows",
                         help="A track is one suite at one version; each has its own ranking. The About page "
                              "lists each track's tasks and how it aggregates them.")
facets = default if track == default["track"] else fetch(lambda: api.facets(track=track), "leaderboard")

with st.sidebar:
    st.subheader("Filters")
    query = st.text_input("Search", placeholder="gpt  owner:alice  precision:bfloat16", max_chars=200,
                          help="Words match model names; `field:value` matches family, owner, license, "
                               "precision or hardware.")
    precision = st.multiselect("Precision", facets["precisions"])
    hardware = st.multiselect("Hardware", facets["hardware_classes"])
    license_ = st.multiselect("License", facets["licenses"])
    low, high = st.columns(2)
    params_min = low.number_input("Params ≥", min_value=0, value=None, step=1_000_000)
    params_max = high.number_input("Params ≤", min_value=0, value=None, step=1_000_000)
    include_flagged = st.checkbox(f"Show flagged models ({facets['flagged']})", value=False)
    normalised = st.toggle("Normalised scores", value=True,
                           help="Off: the mean raw primary metric (e.g. accuracy) instead of the normalised score; "
                                "rows are then ordered by it, and the ranking (defined on normalised scores) is "
                                "hidden.")

capabilities = facets["capabilities"]
score_columns = ["overall", *(c for c in facets["columns"] if c in capabilities or c.endswith(("_low", "_high"))
                              or c.startswith("task:") or c.startswith("contamination_gap"))]
gap = ["contamination_gap"] if "contamination_gap" in facets["columns"] else []
default_columns = IDENTITY + capabilities + gap + DETAILS
picked = st.multiselect("Columns", facets["columns"], default=[c for c in default_columns if c in facets["columns"]],
                        help="`task:` columns are single tasks; `eff:` columns are efficiency measurements; "
                             "`_low`/`_high` columns bound a score's 95% interval.")
if not normalised:
    picked = [c for c in picked if c not in RANKING]
columns = list(dict.fromkeys(ALWAYS + [c for c in picked if c in facets["columns"]]
                             + (["contamination_gap_stderr"] if "contamination_gap" in picked else [])))
sort_options = (["rank"] if normalised else []) + ["-overall"] + [f"-{c}" for c in capabilities] + [
    "params", "-params", "model"]
sort = st.selectbox("Sort by", sort_options,
                    format_func=lambda s: f"{s.lstrip('-')} ({'high first' if s.startswith('-') else 'low first' if s != 'rank' else 'best first'})")

params = {"track": track, "q": query, "precision": precision, "hardware_class": hardware, "license": license_,
          "params_min": params_min, "params_max": params_max, "include_flagged": include_flagged,
          "normalised": normalised, "sort": sort, "columns": columns}
page = st.session_state.get("board_page", 1)
records, total = fetch(lambda: api.board_records(**params, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE),
                       "leaderboard")
if not records and page > 1:  # the filters changed and this page no longer exists: back to the first
    page = st.session_state["board_page"] = 1
    records, total = fetch(lambda: api.board_records(**params, limit=PAGE_SIZE), "leaderboard")
if not records:
    st.info("No model matches these filters and search. Clear some of them to see more.")
    st.stop()

frame = pd.DataFrame.from_records(records, columns=columns)
frame["model_page"] = [model_page_link(r["model_id"], r["model"]) for r in records]
frame["overall (95%)"] = [with_interval(r["overall"], r["overall_low"], r["overall_high"]) for r in records]
if "contamination_gap" in frame:
    frame["contamination gap"] = [plus_minus(r.get("contamination_gap"), r.get("contamination_gap_stderr"))
                                  for r in records]
ranked, partial = frame[frame["rank"].notna()], frame[frame["rank"].isna()]
scale = ("normalised points: 0 is chance, 100 is perfect" if normalised else
         "raw points: the mean raw primary metric (e.g. accuracy) ×100, not adjusted for chance")
if len(ranked):
    top = ranked.head(TOP_CHARTED)
    twice = top["model"].duplicated(keep=False)
    chart = top.assign(row=[f"{int(r)}. {m}" + (f" ({p})" if t else "") if normalised else m + (f" ({p})" if t else "")
                            for r, m, p, t in zip(top["rank"], top["model"], top["precision"], twice)])
    st.altair_chart(interval_chart(chart, label="row", value="overall", low="overall_low", high="overall_high",
                                   x_title=f"overall, {'normalised' if normalised else 'raw'} points, "
                                           "with its 95% interval"),
                    width="stretch")
    if normalised:
        st.caption(f"Scores are {scale}; overall is the weighted mean of capabilities. ± is half the width of "
                   "the 95% interval of a bootstrap over items, paired across models (the exact bounds are the "
                   "`overall_low`/`overall_high` columns and the chart's bars).")
    else:
        st.caption(f"Raw scores ({scale}), ordered by raw overall. Raw means mix tasks with different chance "
                   "levels, so they are not ranked: rank, band and rank range belong to the normalised ranking "
                   "and come back with the normalised toggle.")
    display = [c for c in picked if c not in ("model_id", *COVERAGE_ONLY)]
    order = [DISPLAYED.get(c, c) for c in display if c != "contamination_gap_stderr"]
    table(ranked, column_order=order,
                 column_config=column_config(score_columns))
elif page == 1:
    st.info("No model covers every task of this track yet, so none is ranked; partial ones are listed below.")
if len(partial):
    st.subheader("Not ranked: partial coverage")
    st.caption("These rows lack a score for some task of the track (all from one submission is required), so "
               "they are listed, not ranked. Their aggregates cover only the tasks they ran.")
    order = ["model_page", "owner", "precision", "coverage", "missing_tasks", "overall"]
    table(partial,
                 column_order=[c for c in order if c in partial],
                 column_config={**column_config(score_columns),
                                "missing_tasks": st.column_config.TextColumn("missing tasks")})
pages = -(-total // PAGE_SIZE)
if pages > 1:
    st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, key="board_page")
st.caption(f"{total} rows match on {track}; showing {len(records)} from position {(page - 1) * PAGE_SIZE + 1}. "
           "A model's name opens its page: per-task scores, provenance and samples.")

export = {**params, "limit": EXPORT_LIMIT}


def parquet() -> bytes:
    records_all, _ = api.board_records(**export)
    out = io.BytesIO()
    pd.DataFrame.from_records(records_all, columns=columns).to_parquet(out, index=False)
    return out.getvalue()


# The files are fetched when clicked (callables), so a filter change does not download the whole board.
csv_col, json_col, parquet_col = st.columns(3)
stem = f"evalboard-{track.replace('@', '-')}"
csv_col.download_button("Download CSV", lambda: api.export("csv", **export), f"{stem}.csv", "text/csv")
json_col.download_button("Download JSON", lambda: api.export("json", **export), f"{stem}.json", "application/json")
parquet_col.download_button("Download Parquet", parquet, f"{stem}.parquet", "application/vnd.apache.parquet")
