"""The live queue: what waits and runs, with stage, progress, position and ETA; failures with reasons."""
import pandas as pd
import streamlit as st

from leaderboard.ui import client, fetch, plain

api = client()
st.title("Queue")
if st.button("Refresh"):
    st.rerun()
queue = fetch(api.queue, "queue")


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


if not queue["submissions"]:
    st.info("Nothing is waiting or running: the queue is empty.")
else:
    for hardware, load in queue["hardware"].items():
        st.caption(f"**{plain(hardware)}**: {load['queued']} runs queued, {load['workers_alive']} workers alive")
    for submission in queue["submissions"]:
        with st.container(border=True):
            st.markdown(f"**{plain(submission['model'])}** by {plain(submission['owner'])} · "
                        f"{plain(submission['suite'])} on {plain(submission['hardware_class'])} · "
                        f"{submission['status']} · ETA {eta(submission['eta_s'])}")
            st.progress(submission["progress"])
            st.dataframe(pd.DataFrame([{
                "task": r["task"], "status": r["status"], "stage": r["stage"] or ("waiting" if r["status"] == "queued" else ""), "progress": r["progress"],
                "queue position": r["queue_position"], "attempts": r["attempts"], "worker": r["worker"],
                "ETA": eta(r["eta_s"]) if r["status"] in ("queued", "running") else ""} for r in submission["runs"]]),
                hide_index=True, width="stretch",
                column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})
    st.caption("Queue position 0 runs next on its hardware class. ETAs assume the recent mean run time there.")

st.subheader("Recent failures")
if not queue["failures"]:
    st.info("No failed runs.")
else:
    st.dataframe(pd.DataFrame([{"model": f["model"], "task": f["task"], "hardware": f["hardware_class"],
                                "whose fault": {"user": "the submission", "infra": "the service"}.get(
                                    f["error_kind"], "unknown"),
                                "reason": f["error"], "attempts": f["attempts"], "when": f["finished_at"]}
                               for f in queue["failures"]]), hide_index=True, width="stretch")
