"""Two to four models side by side, with each one's difference from the first."""
import pandas as pd
import streamlit as st

from leaderboard.ui import NO_MODELS, client, fetch, model_label, query_ints

api = client()
st.title("Compare")
st.caption("Δ is a model's normalised score minus the first model's, in points.")

search = st.text_input("Find models", placeholder="name, or family:clip owner:alice")
candidates, _ = fetch(lambda: api.board_records(q=search, limit=200, include_flagged=True,
                                                columns=["model_id", "model", "owner"]), "model list")
if not candidates and not search:
    st.info(NO_MODELS)
    st.stop()
labels = {c["model_id"]: model_label(c) for c in candidates}
preset = [i for i in query_ints("ids") if i in labels][:4]
default = preset or [c["model_id"] for c in candidates[:2]]
chosen = st.multiselect("Models (2 to 4; the first is the reference)", list(labels), default=default,
                        format_func=labels.get, max_selections=4)
if len(chosen) < 2:
    st.info("Choose at least two models to compare.")
    st.stop()

result = fetch(lambda: api.compare(chosen), "comparison")
names = [m["name"] for m in result["models"]]


def points(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def side_by_side(rows: list[dict], key: str) -> pd.DataFrame:
    records = []
    for row in rows:
        record = {key: row[key] if key == "task" else row["aggregate"]}
        if key == "task":
            record["capability"] = row["capability"]
        for i, (name, cell) in enumerate(zip(names, row["models"])):
            record[name] = points(cell["normalised"] if key == "task" else cell["value"])
            if i:
                record[f"Δ {name}"] = points(cell["delta"])
        records.append(record)
    return pd.DataFrame(records)


st.subheader("Aggregates")
st.dataframe(side_by_side(result["aggregates"], "aggregate"), hide_index=True, width="stretch")
st.subheader("Per task")
st.dataframe(side_by_side(result["tasks"], "task"), hide_index=True, width="stretch")
