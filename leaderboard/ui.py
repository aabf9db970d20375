"""What every page shares: the API client, and turning API trouble into words on the page."""
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from leaderboard.client import ApiUnavailable, LeaderboardClient

T = TypeVar("T")

NO_MODELS = "No models have been scored yet. Submit one with `evalboard submit PATH --suite language-core`."


def client() -> LeaderboardClient:
    return LeaderboardClient()


def fetch(call: Callable[[], T], what: str) -> T:
    """Run an API call; if it fails, say so on the page in words and stop this page's script."""
    try:
        return call()
    except ApiUnavailable as exc:
        st.error(f"The {what} cannot be shown right now: {exc}.")
        st.stop()


def model_label(record: dict) -> str:
    return f"{record['model']} ({record['owner']}) · #{record['model_id']}"


def query_int(name: str) -> int | None:
    value = st.query_params.get(name)
    return int(value) if value and value.isdigit() else None


def query_ints(name: str) -> list[int]:
    return [int(v) for v in (st.query_params.get(name) or "").split(",") if v.strip().isdigit()]
