"""Streamlit leaderboard: the entry point, which only lays out the pages.

Every page reads the API only (leaderboard/client.py); every aggregate it shows is computed by the API.
"""
import streamlit as st

st.set_page_config(page_title="Evalboard", layout="wide")
PAGES = [
    st.Page("pages/board.py", title="Leaderboard", icon=":material/leaderboard:", default=True),
    st.Page("pages/model.py", title="Model", icon=":material/neurology:", url_path="model"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("pages/efficiency.py", title="Efficiency", icon=":material/speed:", url_path="efficiency"),
    st.Page("pages/queue.py", title="Queue", icon=":material/pending:", url_path="queue"),
    st.Page("pages/about.py", title="About", icon=":material/info:", url_path="about"),
]
st.navigation(PAGES).run()
