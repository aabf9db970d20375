"""The ranked board: filters, search, raw/normalised toggle, column picker and downloads."""
import io

import pandas as pd
import streamlit as st

from leaderboard.ui import NO_MODELS, client, fetch

PAGE_SIZE = 100
EXPORT_LIMIT = 10_000
IDENTITY = ["rank", "rank_range", "model", "owner", "family", "params", "precision", "hardware_class"]

api = client()
st.title("Evalboard")
st.caption("Community evaluation leaderboard. Scores are normalised to the random baseline: 0 is chance, "
           "100 is perfect; overall is the mean of capabilities. `low`/`high` bound the 95% bootstrap interval; "
           "models in one **band** are not significantly different, and **rank range** is the ranks a model "
           "could hold given the intervals.")
facets = fetch(api.facets, "leaderboard")
if not facets["total"] and not facets["flagged"]:
    st.info(NO_MODELS)
    st.stop()

with st.sidebar:
    st.subheader("Filters")
    query = st.text_input("Search", placeholder="gpt  family:clip  owner:alice",
                          help="Words match model names; `field:value` matches family, owner, license, "
                               "precision or hardware.")
    family = st.multiselect("Family", facets["families"])
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
default_columns = IDENTITY + ["overall", "overall_low", "overall_high"] + facets["capabilities"]
picked = st.multiselect("Columns", facets["columns"], default=[c for c in default_columns if c in facets["columns"]],
                        help="`task:` columns are single tasks; `eff:` columns are efficiency measurements.")
columns = ["model_id"] + [c for c in picked if c != "model_id"]
sort_options = ["rank", "-overall"] + [f"-{c}" for c in facets["capabilities"]] + ["params", "-params", "model"]
sort = st.selectbox("Sort by", sort_options, format_func=lambda s: f"{s.lstrip('-')} ({'high first' if s.startswith('-') else 'low first' if s != 'rank' else 'best first'})")

params = {"q": query, "family": family, "precision": precision, "hardware_class": hardware, "license": license_,
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
st.dataframe(frame, hide_index=True, width="stretch", column_order=[c for c in columns if c != "model_id"],
             column_config={"params": st.column_config.NumberColumn("params", format="compact")})
pages = -(-total // PAGE_SIZE)
if pages > 1:
    st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, key="board_page")
st.caption(f"{total} models match; showing {len(records)} from position {(page - 1) * PAGE_SIZE + 1}. "
           "Open a model on the **Model** page for its per-task scores and provenance.")

export = {**params, "limit": EXPORT_LIMIT}


def parquet() -> bytes:
    records_all, _ = api.board_records(**export)
    out = io.BytesIO()
    pd.DataFrame.from_records(records_all, columns=columns).to_parquet(out, index=False)
    return out.getvalue()


# The files are fetched when clicked (callables), so a filter change does not download the whole board.
csv_col, json_col, parquet_col = st.columns(3)
csv_col.download_button("Download CSV", lambda: api.export("csv", **export), "evalboard-leaderboard.csv", "text/csv")
json_col.download_button("Download JSON", lambda: api.export("json", **export), "evalboard-leaderboard.json",
                         "application/json")
parquet_col.download_button("Download Parquet", parquet, "evalboard-leaderboard.parquet",
                            "application/vnd.apache.parquet")
