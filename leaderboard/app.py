"""Streamlit leaderboard: the entry point, which only lays out the pages.

Every page reads the API only (leaderboard/client.py); every aggregate it shows is computed by the API.
The pages live in views/, not pages/: beside a `pages/` folder Streamlit runs in its older multipage mode
until this script has run once, so a shared link to /model on a freshly started board would open that
page alone, without this layout and navigation.
"""
import streamlit as st

st.set_page_config(page_title="Evalboard", layout="wide")
PAGES = [
    st.Page("views/board.py", title="Leaderboard", icon=":material/leaderboard:", default=True),
    st.Page("views/model.py", title="Model", icon=":material/neurology:", url_path="model"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("views/efficiency.py", title="Efficiency", icon=":material/speed:", url_path="efficiency"),
    st.Page("views/queue.py", title="Queue", icon=":material/pending:", url_path="queue"),
    st.Page("views/about.py", title="About", icon=":material/info:", url_path="about"),
]
st.navigation(PAGES).run()
