"""What the numbers are made of: suites, datasets with versions and checksums, and the formulas."""
import pandas as pd
import streamlit as st

from leaderboard.ui import client, fetch, plain, table

api = client()
st.title("About")
st.markdown("Evalboard evaluates community-submitted checkpoints on named hardware and publishes every number "
            "with the configuration that produced it. Aggregation is published, not hidden:")
formulas = fetch(api.aggregation, "aggregation formulas")
st.markdown("\n".join(f"- **{name.replace('_', ' ')}**: {text}" for name, text in formulas.items()
                      if isinstance(text, str)))
st.latex(r"\text{normalised} = \frac{\text{raw} - \text{random}}{1 - \text{random}}, \quad "
         r"\text{capability} = \operatorname{mean}_{\text{its tasks}}, \quad "
         r"\text{overall} = \operatorname{mean}_{\text{capabilities}}")

st.subheader("Tracks: what each ranking compares")
st.markdown("A **track** is one suite at one version. Each track is ranked on its own, never mixed with another; "
            "a row is one model at one precision on the track, from one submission. How each track aggregates "
            "is written in its suite's YAML (`aggregation:`) and shown here as applied.")
tracks = {t["id"]: t for t in fetch(api.tracks, "tracks")}
table(pd.DataFrame([{
    "track": t["id"], "family": t["family"], "default for family": t["default_for_family"],
    "ranked when": t["ranked_when"], "required tasks": ", ".join(t["required_tasks"]),
    "capability weights": ", ".join(f"{c} × {w:g}" for c, w in t["capability_weights"].items()),
    "precisions (one row each)": ", ".join(t["precisions"]),
    "contamination gap from": ", ".join(t["contamination_tasks"]) or "none",
    "ranked rows": t["ranked"], "unranked rows": t["unranked"]} for t in tracks.values()]))

suites = fetch(api.suites, "suites")
if not suites:
    st.info("No suites are declared.")
for suite in suites:
    st.subheader(f"{plain(suite['name'])} · version {plain(suite['version'])}")
    st.caption(f"{plain(suite['family'])} models. {plain(suite['description'])}")
    track = tracks.get(f"{suite['name']}@{suite['version']}")
    if track:
        weights = ", ".join(f"{c} × {w:g}" for c, w in track["capability_weights"].items())
        st.caption(plain(f"Track {track['id']}: ranked when {track['ranked_when']}. Overall = weighted mean of "
                         f"capabilities ({weights}); capability = mean of its tasks' normalised scores."))
    else:
        st.caption("Not a ranked track: these are measurements, shown on the Efficiency page per hardware class.")
    rows = []
    for task in suite["tasks"]:
        dataset = task["dataset"] or {}
        splits = dataset.get("splits", {})
        required = task["name"] in track["required_tasks"] if track else None
        rows.append({"task": task["name"], "capability": task["capability"], "metric": task["primary_metric"],
                     "required to rank": required,
                     "random baseline": task["random_baseline"], "dataset": dataset.get("name", "remote"),
                     "dataset version": dataset.get("version"), "license": dataset.get("license"),
                     "test rows": splits.get("test", {}).get("rows"),
                     "test sha256": splits.get("test", {}).get("sha256"), "how made": dataset.get("how_made")})
    table(pd.DataFrame(rows))
