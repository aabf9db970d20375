"""The live queue: what waits and runs, with stage, progress, position and ETA; failures with reasons."""
import pandas as pd
import streamlit as st

from leaderboard.ui import client, fetch, plain, table

REFRESH_LIVE_S, REFRESH_IDLE_S = 5, 30
LIVE = ("queued", "running")
# Words with a neutral or calm marker: a finished run is done, not an alarm; only a failure is marked as one.
STATUS = {"queued": "⏳ queued", "running": "▶ running", "finished": "✓ finished", "failed": "✗ failed",
          "cancelled": "– cancelled"}

api = client()
st.title("Queue")


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def show(queue: dict) -> None:
    if not queue["submissions"]:
        st.info("Nothing is waiting or running: the queue is empty.")
    else:
        for hardware, load in queue["hardware"].items():
            st.caption(f"**{plain(hardware)}**: {load['queued']} runs queued, {load['workers_alive']} workers alive")
        for submission in queue["submissions"]:
            with st.container(border=True):
                st.markdown(f"**{plain(submission['model'])}** by {plain(submission['owner'])} · "
                            f"{plain(submission['suite'])} on {plain(submission['hardware_class'])} · "
                            f"{plain(submission['status'])} · ETA {eta(submission['eta_s'])}")
                st.progress(submission["progress"])
                table(pd.DataFrame([{
                    "task": r["task"], "status": STATUS.get(r["status"], r["status"]),
                    "stage": r["stage"] or ("waiting" if r["status"] == "queued" else ""), "progress": r["progress"],
                    "queue position": r["queue_position"], "attempts": r["attempts"], "worker": r["worker"],
                    "ETA": eta(r["eta_s"]) if r["status"] in LIVE else ""} for r in submission["runs"]]),
                    column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0,
                                                                               max_value=1.0),
                                   "queue position": st.column_config.NumberColumn("queue position", format="%d")})
        st.caption("Queue position 0 runs next on its hardware class. ETAs assume the recent mean run time there.")

    st.subheader("Recent failures")
    if not queue["failures"]:
        st.info("No failed runs.")
    else:
        table(pd.DataFrame([{"model": f["model"], "task": f["task"], "hardware": f["hardware_class"],
                             "whose fault": {"user": "the submission", "infra": "the service"}.get(
                                 f["error_kind"], "unknown"),
                             "reason": f["error"], "attempts": f["attempts"], "when": f["finished_at"]}
                            for f in queue["failures"]]))


def live(queue: dict) -> bool:
    return any(r["status"] in LIVE for s in queue["submissions"] for r in s["runs"])


# The page reads the queue again every few seconds while anything waits or runs, and now and then when
# nothing does (a fragment reruns alone, not the whole page); when that changes, the whole page reruns to
# change the pace.
first = fetch(api.queue, "queue")
st.session_state["queue_first"] = first
was_live = live(first)


@st.fragment(run_every=REFRESH_LIVE_S if was_live else REFRESH_IDLE_S)
def live_queue() -> None:
    queue = st.session_state.pop("queue_first", None) or fetch(api.queue, "queue")
    if live(queue) != was_live:
        st.rerun()
    show(queue)
    st.caption(f"This page refreshes itself every {REFRESH_LIVE_S if was_live else REFRESH_IDLE_S} s"
               f"{' while runs wait or run' if was_live else ''}.")


if st.button("Refresh"):
    st.rerun()
live_queue()
