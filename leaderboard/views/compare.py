"""Two to four rows of one track side by side, each against the first, with paired verdicts."""
import pandas as pd
import streamlit as st

from leaderboard.charts import interval_chart
from leaderboard.ui import NO_MODELS, client, fetch, plain, query_ints, table

api = client()
st.title("Compare")
st.caption("Rows of one track side by side. Δ is a row's normalised score minus the first row's, in points. "
           "The verdicts compare each row with the first on the same items: the paired difference with its 95% "
           "interval, and McNemar's test where items are right or wrong (a paired bootstrap test otherwise).")

facets = fetch(api.facets, "track list")
tracks = [t["id"] for t in facets["tracks"]]
linked = st.query_params.get("track")
linked_ids = query_ints("ids")
if linked not in tracks and linked_ids:
    # ?ids= without a track (an old link): the first model's own track, so a CLIP model opens on a CLIP track.
    first = fetch(lambda: api.model(linked_ids[0]), "model")["board"]
    linked = first["track"] if first else None
track = st.selectbox("Track", tracks, index=tracks.index(linked if linked in tracks else facets["track"]),
                     help="Only rows of one track can be compared: the same tasks, suite version and items.")
search = st.text_input("Find models", placeholder="name, or owner:alice precision:bfloat16", max_chars=200)
candidates, _ = fetch(lambda: api.board_records(track=track, q=search, limit=200, include_flagged=True,
                                                columns=["row_id", "model_id", "model", "owner", "precision",
                                                         "coverage"]), "model list")
if not candidates and not search:
    st.info(NO_MODELS if not any(t["rows"] for t in facets["tracks"]) else
            "No model has a row on this track yet. Choose another track.")
    st.stop()
# Labels are shown as text by the multiselect widget (no Markdown), so names need no escaping here.
labels = {c["row_id"]: f"{c['model']} ({c['owner']}) · {c['precision']}"
                       f"{' · chat template' if c['row_id'].endswith(':chat') else ''} · {c['coverage']} · #{c['model_id']}"
          for c in candidates}
preset = []
for model_id in linked_ids:  # ?ids=1,2 from the Model page: each model's first (best) row
    preset += [r for r in labels if r.split(":")[0] == str(model_id)][:1]
# One model linked (the Model page's "compare" link): beside it, the best row of another model on its track.
others = [r for r in labels if r.split(":")[0] not in {p.split(":")[0] for p in preset}]
default = (preset + others[:max(0, 2 - len(preset))])[:4] if preset else list(labels)[:2]
chosen = st.multiselect("Rows (2 to 4; the first is the reference)", list(labels), default=default,
                        format_func=labels.get, max_selections=4)
if len(chosen) < 2:
    st.info("Choose at least two rows to compare.")
    st.stop()

result = fetch(lambda: api.compare(chosen, track=track), "comparison")
same_model = len({m["model_id"] for m in result["models"]}) < len(result["models"])
names = [f"{m['name']} ({m['precision']}{', chat template' if m['chat_template'] else ''})" if same_model
         else m["name"] for m in result["models"]]


def points(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def one_decimal(names: list[str]) -> dict:
    return {column: st.column_config.NumberColumn(column, format="%.1f")
            for name in names for column in (name, f"Δ {name}")}


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


def aggregate_intervals() -> pd.DataFrame:
    """Each row's overall and capabilities with their 95% intervals (its own, over items), in points."""
    records = []
    for name, row in zip(names, result["models"]):
        scores = {"overall": (row["overall"], row["overall_ci"]),
                  **{c: (v, (row["capabilities_ci"] or {}).get(c)) for c, v in row["capabilities"].items()}}
        for aggregate, (value, interval) in scores.items():
            if value is not None:
                low, high = interval or (value, value)
                records.append({"aggregate": aggregate, "row": name, "score": points(value),
                                "low": points(low), "high": points(high)})
    return pd.DataFrame(records)


st.subheader("Aggregates")
st.altair_chart(interval_chart(aggregate_intervals(), label="aggregate", value="score", low="low", high="high",
                               color="row", x_title="normalised points, with each row's 95% interval"),
                width="stretch")
table(side_by_side(result["aggregates"], "aggregate"),
             column_config=one_decimal(names))
st.subheader("Per task")
table(side_by_side(result["tasks"], "task"), column_config=one_decimal(names))

st.subheader("Paired verdicts")
for pair in result["paired"]:
    overall = next((d for d in pair["differences"] if d["kind"] == "overall"), None)
    if overall:
        # Verdicts hold model names (author-chosen): shown escaped, as text.
        (st.success if overall["significant"] else st.info)(plain(overall["verdict"]))
    significant = [d for d in pair["differences"] if d["kind"] != "overall" and d["significant"]]
    for d in significant:
        st.markdown(f"- {plain(d['verdict'])}")
verdicts = pd.DataFrame([{"row": pair["model"], "against": pair["reference"], "on": d["name"], "kind": d["kind"],
                       "difference": points(d["difference"]), "low": points(d["ci"][0]), "high": points(d["ci"][1]),
                       "test": d["test"], "p": d["p_value"], "items": d["items"], "method": d["method"]}
                      for pair in result["paired"] for d in pair["differences"]])
table(verdicts,
             column_config={"p": st.column_config.NumberColumn("p", format="%.2g")})
st.caption("difference, low and high are in points (normalised ×100). A paired interval that holds 0 means the "
           "two rows are not distinguishable on it. The method says where a task had no per-item results and "
           "its interval fell back on the reported standard errors.")
