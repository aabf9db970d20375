"""What the numbers are made of: suites, datasets with versions and checksums, and the formulas."""
import pandas as pd
import streamlit as st

from leaderboard.ui import client, fetch

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

suites = fetch(api.suites, "suites")
if not suites:
    st.info("No suites are declared.")
for suite in suites:
    st.subheader(f"{suite['name']} · version {suite['version']}")
    st.caption(f"{suite['family']} models. {suite['description']}")
    rows = []
    for task in suite["tasks"]:
        dataset = task["dataset"] or {}
        splits = dataset.get("splits", {})
        rows.append({"task": task["name"], "capability": task["capability"], "metric": task["primary_metric"],
                     "random baseline": task["random_baseline"], "dataset": dataset.get("name", "remote"),
                     "dataset version": dataset.get("version"), "license": dataset.get("license"),
                     "test rows": splits.get("test", {}).get("rows"),
                     "test sha256": splits.get("test", {}).get("sha256"), "how made": dataset.get("how_made")})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
