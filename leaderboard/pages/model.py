"""One model: its place on the board, per-task scores, the provenance of each number, and its samples."""
import json

import pandas as pd
import streamlit as st

from leaderboard.charts import radar
from leaderboard.ui import NO_MODELS, client, fetch, model_label, plain, query_int

api = client()
st.title("Model")

facets = fetch(api.facets, "track list")
tracks = [t["id"] for t in facets["tracks"]]
# Models are listed per track (a CLIP model is on a CLIP track); a ?model_id= link opens any model.
track = st.selectbox("Track", tracks, index=tracks.index(facets["track"]))
search = st.text_input("Find a model", placeholder="name, or owner:alice")
candidates, total = fetch(lambda: api.board_records(track=track, q=search, limit=50, include_flagged=True,
                                                    columns=["model_id", "model", "owner"]), "model list")
wanted = query_int("model_id")
if not candidates and not search and wanted is None:
    st.info(NO_MODELS)
    st.stop()
if not candidates and wanted is None:
    st.info("No model matches this search.")
    st.stop()
ids = list(dict.fromkeys(c["model_id"] for c in candidates))  # a model with two precisions: once
if wanted is not None and wanted not in ids:
    ids.insert(0, wanted)
labels = {c["model_id"]: model_label(c) for c in candidates}
model_id = st.selectbox("Model", ids, index=ids.index(wanted) if wanted in ids else 0,
                        format_func=lambda i: labels.get(i, f"#{i}"))
detail = fetch(lambda: api.model(model_id), "model")
model, board = detail["model"], detail["board"]

# Names, owners, licences and flag reasons are the author's (or an admin's) words: shown as text, never Markdown.
st.header(plain(model["name"]))
st.caption(f"by {plain(model['owner'])} · {plain(model['family'])} · {model['params'] or '?'} parameters · "
           f"license {plain(model['license']) if model['license'] else 'not given'}")
if model.get("license_link"):
    st.caption(f"license text: {plain(model['license_link'])}")
if model["flagged"]:
    st.warning(f"Flagged by an admin: {plain(model['flag_reason']) if model['flag_reason'] else 'no reason given'}.")
if board is None:
    st.info("This model has no finished scores yet; see the **Queue** page for its runs.")
else:
    rank_col, overall_col, band_col = st.columns(3)
    best, worst = board["rank_range"] or (board["rank"], board["rank"])
    rank_col.metric("Rank", board["rank"], help=f"could hold ranks {best}–{worst} given the intervals")
    low, high = board["overall_ci"] or (None, None)
    overall_col.metric("Overall", f"{100 * board['overall']:.1f}",
                       help=None if low is None else f"95% interval {100 * low:.1f}–{100 * high:.1f}")
    band_col.metric("Band", board["band"] or "–", help="models in one band are not significantly different")
    capabilities = {c: round(100 * v, 1) for c, v in board["capabilities"].items()}
    if len(capabilities) >= 3:
        st.altair_chart(radar(capabilities, "Capabilities (points)"))
    else:
        st.bar_chart(pd.Series(capabilities, name="points"), horizontal=True)
        st.caption("A radar needs three capabilities or more; this model has scores in "
                   f"{len(capabilities)}.")

tasks = detail["tasks"]
if tasks:
    st.subheader("Per-task scores")
    st.dataframe(pd.DataFrame([{
        "task": t["task"], "capability": t["capability"], "metric": t["primary_metric"], "raw": t["raw"],
        "stderr": t["stderr"], "n": t["n"], "normalised (points)": None if t["normalised"] is None
        else round(100 * t["normalised"], 1), "random baseline": t["random_baseline"],
        "hardware": t["hardware_class"], "precision": t["precision"], "finished": t["finished_at"]} for t in tasks]),
        hide_index=True, width="stretch")

    st.subheader("Provenance")
    by_task = {t["task"]: t for t in tasks}
    chosen = by_task[st.selectbox("Number", list(by_task), key="provenance_task")]
    st.caption("The command that reproduces this number (copy it with the button at the right of the box):")
    st.code(chosen["reproduce"], language="bash")
    st.json(chosen["provenance"], expanded=False)

    st.subheader("Samples")
    sample_task = by_task[st.selectbox("Task", list(by_task), key="sample_task")]
    samples = fetch(lambda: api.samples(sample_task["run_id"]), "samples")
    if not samples:
        st.info("This run kept no per-sample records.")
    else:
        wrong_only = st.checkbox("Wrong answers only")
        needle = st.text_input("Search prompts")
        metric = sample_task["primary_metric"]

        def wrong(sample: dict) -> bool:
            score = sample["metrics"].get(metric)
            return score == 0 if isinstance(score, (int, float)) else sample["prediction"] != sample["target"]
        shown = [s for s in samples if (not wrong_only or wrong(s))
                 and (not needle or needle.lower() in s["input"].lower())]
        st.caption(f"{len(shown)} of {len(samples)} samples")
        st.dataframe(pd.DataFrame([{"index": s["index"], "input": s["input"], "target": s["target"],
                                    "prediction": s["prediction"], metric: s["metrics"].get(metric)} for s in shown],
                                  columns=["index", "input", "target", "prediction", metric]),
                     hide_index=True, width="stretch")
        st.download_button("Download these samples (JSONL)",
                           "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in shown),
                           f"{model['name'].replace('/', '_')}-{sample_task['task']}-samples.jsonl",
                           "application/x-ndjson")
