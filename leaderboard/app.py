"""Streamlit leaderboard. Reads the API only; every aggregate it shows is computed by the API."""
import pandas as pd
import streamlit as st

from leaderboard.client import ApiUnavailable, LeaderboardClient


def leaderboard_frame(payload: dict) -> pd.DataFrame:
    """One row per model: rank, identity, overall and one column per capability (normalised, ×100)."""
    records = []
    for row in payload["rows"]:
        record = {"rank": row["rank"], "model": row["model"], "owner": row["owner"], "family": row["family"],
                  "params": row["params"], "precision": row["precision"], "hardware": row["hardware_class"],
                  "overall": None if row["overall"] is None else round(100 * row["overall"], 1)}
        for capability, value in row["capabilities"].items():
            record[capability] = round(100 * value, 1)
        for task, score in row["tasks"].items():
            record[f"{task} (raw)"] = round(100 * score["raw"], 1)
        records.append(record)
    return pd.DataFrame.from_records(records)


def main() -> None:
    st.set_page_config(page_title="Evalboard", layout="wide")
    st.title("Evalboard")
    st.caption("Community evaluation leaderboard. Scores are normalised to the random baseline: "
               "0 is chance, 100 is perfect. Overall is the mean of capabilities.")
    client = LeaderboardClient()
    try:
        payload = client.leaderboard()
    except ApiUnavailable as exc:
        st.error(f"The leaderboard cannot be shown right now: {exc}.")
        return
    if not payload["rows"]:
        st.info("No models have been scored yet. Submit one with `evalboard submit PATH --suite language-core`.")
        return
    frame = leaderboard_frame(payload)
    st.dataframe(frame, hide_index=True, use_container_width=True)
    st.download_button("Download CSV", frame.to_csv(index=False), "evalboard-leaderboard.csv", "text/csv")


main()
