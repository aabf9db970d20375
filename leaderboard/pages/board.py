"""The ranked board of one track: track selector, filters, search, raw/normalised toggle, column picker,
downloads, and the rows not ranked for want of coverage."""
import io

import pandas as pd
import streamlit as st

from leaderboard.ui import NO_MODELS, client, fetch

PAGE_SIZE = 100
EXPORT_LIMIT = 10_000
IDENTITY = ["rank", "rank_range", "model", "owner", "family", "params", "precision", "hardware_class"]
# Always fetched: they decide which table a row goes to and say what an unranked row lacks.
COVERAGE = ["coverage", "missing_tasks"]

api = client()
st.title("Evalboard")
st.caption("Community evaluation leaderboard, one **track** (a suite at one version) at a time: a ranking never "
           "mixes suites, versions or precisions, and a model is ranked only with a score for every task of the "
           "track. Scores are normalised to the random baseline: 0 is chance, 100 is perfect; overall is the mean "
           "of capabilities. `low`/`high` bound the 95% interval of a bootstrap over items, paired across models; "
           "models in one **band** are not significantly different, and **rank range** is the ranks a model held "
           "across the bootstrap draws.")
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
    query = st.text_input("Search", placeholder="gpt  owner:alice  precision:bfloat16",
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
                           help="Off: the mean raw primary metric (e.g. accuracy) instead of the normalised score.")

score_columns = ["overall", "overall_low", "overall_high", "band"]
for capability in facets["capabilities"]:
    score_columns += [capability, f"{capability}_low", f"{capability}_high"]
default_columns = IDENTITY + ["overall", "overall_low", "overall_high"] + facets["capabilities"] + [
    c for c in ("contamination_gap", "contamination_gap_stderr") if c in facets["columns"]]
picked = st.multiselect("Columns", facets["columns"], default=[c for c in default_columns if c in facets["columns"]],
                        help="`task:` columns are single tasks; `eff:` columns are efficiency measurements.")
columns = ["model_id"] + [c for c in picked if c != "model_id"]
columns += [c for c in ("rank", *COVERAGE) if c not in columns]
shown_columns = [c for c in picked if c not in ("model_id", *COVERAGE)]
sort_options = ["rank", "-overall"] + [f"-{c}" for c in facets["capabilities"]] + ["params", "-params", "model"]
sort = st.selectbox("Sort by", sort_options, format_func=lambda s: f"{s.lstrip('-')} ({'high first' if s.startswith('-') else 'low first' if s != 'rank' else 'best first'})")

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
ranked, partial = frame[frame["rank"].notna()], frame[frame["rank"].isna()]
if len(ranked):
    st.dataframe(ranked, hide_index=True, width="stretch", column_order=shown_columns,
                 column_config={"params": st.column_config.NumberColumn("params", format="compact"),
                                "rank": st.column_config.NumberColumn("rank", format="%d")})
elif page == 1:
    st.info("No model covers every task of this track yet, so none is ranked; partial ones are listed below.")
if len(partial):
    st.subheader("Not ranked: partial coverage")
    st.caption("These rows lack a score for some task of the track (all from one submission is required), so "
               "they are listed, not ranked. Their aggregates cover only the tasks they ran.")
    st.dataframe(partial, hide_index=True, width="stretch",
                 column_order=["model", "owner", "precision", "coverage", "missing_tasks", "overall"],
                 column_config={"missing_tasks": st.column_config.TextColumn("missing tasks")})
pages = -(-total // PAGE_SIZE)
if pages > 1:
    st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, key="board_page")
st.caption(f"{total} rows match on {track}; showing {len(records)} from position {(page - 1) * PAGE_SIZE + 1}. "
           "Open a model on the **Model** page for its per-task scores and provenance.")

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
