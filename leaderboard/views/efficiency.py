"""Score against efficiency (tokens/s, images/s, latency, memory) per hardware class, with the Pareto front."""
import pandas as pd
import streamlit as st

from leaderboard.charts import efficiency_scatter, pareto_front
from leaderboard.ui import client, fetch, table

api = client()
st.title("Efficiency")
st.caption("Each point is a model on one hardware class: its overall score (normalised, points) against an "
           "efficiency measurement. Solid points joined by the dashed line are the Pareto front of their class: "
           "no other model there is both better scoring and more efficient. Horizontal bars are ±1 standard "
           "error of the measurement; the table names the hardware profile (GET /api/v1/hardware) each figure "
           "was measured on, so figures from different machines are not silently compared.")

metrics = fetch(api.efficiency, "efficiency data")["metrics"]
if not metrics:
    st.info("No efficiency measurements yet. Figures come from the efficiency suites, run on a worker of the "
            "hardware class they are published for: `efficiency-cpu` for language models (tokens/s, latency, "
            "peak memory), `efficiency-clip-cpu` for CLIP models (images/s). Submit a model to one:")
    st.code("evalboard submit ./my-model --suite efficiency-cpu --hardware cpu\n"
            "evalboard submit ./my-clip --suite efficiency-clip-cpu --family clip --hardware cpu", language="bash")
    st.caption("Each point is then plotted against the model's overall score on its family's track.")
    st.stop()

metric = st.selectbox("Efficiency metric", metrics)
points = fetch(lambda: api.efficiency(metric), "efficiency data")["points"]
points = [p for p in points if p["overall"] is not None]
if not points:
    st.info(f"No scored model has a {metric} measurement yet.")
    st.stop()
frame = pd.DataFrame(points)
frame["score"] = (100 * frame["overall"]).round(1)
frame["pareto"] = False
for hardware, group in frame.groupby("hardware_class"):
    front = pareto_front(list(zip(group["value"], group["score"])),
                         x_higher_is_better=bool(group["higher_is_better"].iloc[0]))
    frame.loc[group.index[front], "pareto"] = True
st.altair_chart(efficiency_scatter(frame, metric, frame["unit"].dropna().iloc[0] if frame["unit"].notna().any()
                                   else None), width="stretch")
table(frame[["model", "hardware_class", "precision", "value", "stderr", "n", "hardware_profile_id", "score",
                    "pareto"]]
             .rename(columns={"value": metric, "stderr": "± stderr", "n": "trials",
                              "hardware_profile_id": "hardware profile"}).sort_values("score", ascending=False))
