"""What every page shares: the API client, turning API trouble into words on the page, and showing
author-chosen text (names, owners, licences, flag reasons) as text."""
import string
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from leaderboard.client import ApiUnavailable, LeaderboardClient

T = TypeVar("T")

NO_MODELS = "No models have been scored yet. Submit one with `evalboard submit PATH --suite language-core`."


# Every ASCII punctuation character may be backslash-escaped in CommonMark and then stands for itself.
# Escaping all of them (an allow-list of what passes: letters, digits, spaces, non-ASCII) leaves no
# link, image, emphasis, heading, HTML, LaTeX (`$`), Streamlit directive (`:red[…]`, `:material/…:`) or
# GFM autolink (`www.x`, `http://x`: their `.` and `:` are escaped) in what the author wrote.
_ESCAPE = str.maketrans({c: "\\" + c for c in string.punctuation})


def plain(text: object) -> str:
    """`text` for a Streamlit element that renders Markdown (header, caption, warning, markdown),
    escaped so that it shows literally; line breaks become spaces (no new blocks)."""
    return " ".join(str(text).split()).translate(_ESCAPE)


def client() -> LeaderboardClient:
    return LeaderboardClient()


def fetch(call: Callable[[], T], what: str) -> T:
    """Run an API call; if it fails, say so on the page in words and stop this page's script."""
    try:
        return call()
    except ApiUnavailable as exc:
        st.error(f"The {what} cannot be shown right now: {plain(exc)}.")  # the API's detail may echo input
        st.stop()


def model_label(record: dict) -> str:
    return f"{record['model']} ({record['owner']}) · #{record['model_id']}"


def query_int(name: str) -> int | None:
    value = st.query_params.get(name)
    return int(value) if value and value.isdigit() else None


def query_ints(name: str) -> list[int]:
    return [int(v) for v in (st.query_params.get(name) or "").split(",") if v.strip().isdigit()]
