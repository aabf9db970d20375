"""One model: its place on the board, per-task scores, the provenance of each number, and its samples."""
import json

import pandas as pd
import streamlit as st

from leaderboard.charts import interval_chart, radar
from leaderboard.ui import NO_MODELS, client, fetch, humanise_count, model_label, plain, plus_minus, query_int, table

Z95 = 1.959964  # a task's 95% interval from its reported standard error (normal approximation)

api = client()
st.title("Model")

facets = fetch(api.facets, "track list")
tracks = [t["id"] for t in facets["tracks"]]
# Models are listed per track (a CLIP model is on a CLIP track); a ?model_id= link opens any model.
wanted = query_int("model_id")
linked_track = None
if wanted is not None:  # a link opens on the linked model's own track (a CLIP model on a CLIP track)
    linked_track = (fetch(lambda: api.model(wanted), "model")["board"] or {}).get("track")
track = st.selectbox("Track", tracks, index=tracks.index(linked_track if linked_track in tracks else facets["track"]))
search = st.text_input("Find a model", placeholder="name, or owner:alice", max_chars=200)
candidates, total = fetch(lambda: api.board_records(track=track, q=search, limit=50, include_flagged=True,
                                                    columns=["model_id", "model", "owner"]), "model list")
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
st.caption(f"by {plain(model['owner'])} · {plain(model['family'])} · {humanise_count(model['params'])} parameters · "
           f"license {plain(model['license']) if model['license'] else 'not given'}")
if model.get("license_link"):
    st.caption(f"license text: {plain(model['license_link'])}")
if model["flagged"]:
    st.warning(f"Flagged by an admin: {plain(model['flag_reason']) if model['flag_reason'] else 'no reason given'}.")


def points(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def interval_rows(scores: dict[str, float], intervals: dict[str, list[float] | None]) -> pd.DataFrame:
    return pd.DataFrame([{"capability": name, "score": points(value),
                          "low": points((intervals.get(name) or [value, value])[0]),
                          "high": points((intervals.get(name) or [value, value])[1])}
                         for name, value in scores.items()])


if board is None:
    st.info("This model has no finished scores yet; see the **Queue** page for its runs.")
else:
    rank_col, overall_col, band_col = st.columns(3)
    best, worst = board["rank_range"] or (board["rank"], board["rank"])
    low, high = board["overall_ci"] or (None, None)
    if board["rank"] is None:
        rank_col.metric("Rank", "not ranked", help="a score for every task of the track is needed to rank")
        rank_col.caption(f"coverage {board['coverage']}")
    else:
        rank_col.metric("Rank", board["rank"])
        rank_col.caption(f"could hold ranks {best}–{worst} given the intervals")
    overall_col.metric("Overall (points)", plus_minus(points(board["overall"]),
                                                      None if low is None else 50 * (high - low)))
    overall_col.caption("normalised: 0 is chance, 100 is perfect" if low is None else
                        f"95% interval {100 * low:.1f} to {100 * high:.1f}; 0 is chance, 100 is perfect")
    band_col.metric("Band", board["band"] or "–")
    band_col.caption(f"on track {plain(board['track'])} at {plain(board['precision'])}; models in one band are "
                     "not significantly different")
    capabilities = {c: round(100 * v, 1) for c, v in board["capabilities"].items()}
    if len(capabilities) >= 3:
        radar_col, interval_col = st.columns(2)
        radar_col.altair_chart(radar(capabilities, "Capabilities (normalised points; rings at 25, 50, 75, 100)"))
        interval_col.altair_chart(interval_chart(
            interval_rows(board["capabilities"], board["capabilities_ci"] or {}), label="capability",
            value="score", low="low", high="high", x_title="capability, points, with its 95% interval"),
            width="stretch")
tasks = detail["tasks"]
if tasks:
    st.subheader("Per-task scores")
    scored = [t for t in tasks if t["raw"] is not None]
    if scored and (model["family"] == "clip" or board is None or len(board["capabilities"]) < 3):
        # Each task in its own metric (accuracy, mean recall, group score: all fractions, shown ×100),
        # the 95% interval from its standard error, and the chance level to read it against.
        frame = pd.DataFrame([{
            "task": t["task"], "metric": t["primary_metric"], "score": points(t["raw"]),
            "low": points(t["raw"] - Z95 * (t["stderr"] or 0)), "high": points(t["raw"] + Z95 * (t["stderr"] or 0)),
            "chance": points(t["random_baseline"])} for t in scored])
        st.altair_chart(interval_chart(frame, label="task", value="score", low="low", high="high", color="metric",
                                       reference="chance", x_title="primary metric ×100, with its 95% interval"),
                        width="stretch")
        st.caption("Each task in its own primary metric (×100), with its 95% interval (±1.96 standard errors); "
                   "the grey tick is the task's chance level.")
    table(pd.DataFrame([{
        "task": t["task"], "capability": t["capability"], "metric": t["primary_metric"], "raw": t["raw"],
        "± 95%": None if t["stderr"] is None else round(Z95 * t["stderr"], 4),
        "stderr": t["stderr"], "n": t["n"], "normalised (points)": points(t["normalised"]),
        "random baseline": t["random_baseline"],
        "hardware": t["hardware_class"], "precision": t["precision"], "finished": t["finished_at"]} for t in tasks]),
        column_config={"raw": st.column_config.NumberColumn("raw", format="%.4f"),
                       "± 95%": st.column_config.NumberColumn("± 95%", format="%.4f"),
                       "stderr": st.column_config.NumberColumn("stderr", format="%.4f"),
                       "normalised (points)": st.column_config.NumberColumn("normalised (points)", format="%.1f")})
    if board is not None:
        st.page_link("views/compare.py", label="Compare with other models of this track",
                     query_params={"track": board["track"], "ids": str(model["id"])}, icon=":material/compare_arrows:")

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
        table(pd.DataFrame([{"index": s["index"], "input": s["input"], "target": s["target"],
                                    "prediction": s["prediction"], metric: s["metrics"].get(metric)} for s in shown],
                                  columns=["index", "input", "target", "prediction", metric]))
        st.download_button("Download these samples (JSONL)",
                           "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in shown),
                           f"{model['name'].replace('/', '_')}-{sample_task['task']}-samples.jsonl",
                           "application/x-ndjson")
