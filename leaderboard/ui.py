"""What every page shares: the API client, turning API trouble into words on the page, and showing
author-chosen text (names, owners, licences, flag reasons) as text."""
import math
import string
from collections.abc import Callable
from urllib.parse import quote
from typing import TypeVar

import streamlit as st

from leaderboard.client import ApiUnavailable, LeaderboardClient, NotFound

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


def table(data, **options) -> None:
    """A read-only grid as every page shows one: no index, the page's width, and a missing value as an
    empty cell (the grid's default writes `None`)."""
    st.dataframe(data, **{"hide_index": True, "width": "stretch", "placeholder": "", **options})


def client() -> LeaderboardClient:
    return LeaderboardClient()


def fetch(call: Callable[[], T], what: str) -> T:
    """Run an API call; if it fails, say so on the page in words and stop this page's script."""
    try:
        return call()
    except NotFound as exc:  # not an outage: the API says what does not exist ("no model 999")
        detail = str(exc)
        st.warning(f"{plain(detail[:1].upper() + detail[1:])}.")
        st.stop()
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


# A link to a model's page carries the name after `#`, where the grid's LinkColumn reads the text it shows
# (MODEL_LINK_TEXT) and percent-decodes it (decodeURIComponent): every character but letters and digits
# is encoded, so the name cannot change where the link goes.
MODEL_LINK_TEXT = r"^[^#]*#(.*)$"


def model_page_link(model_id: int, name: str) -> str:
    """A relative link to the Model page of `model_id`; the id alone decides where it goes."""
    return f"model?model_id={int(model_id)}#{quote(str(name), safe='')}"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def plus_minus(value: float | None, spread: float | None) -> str:
    """`23.2 ± 2.5`, `23.2` without a spread, an empty string without a value (never `None`)."""
    if _missing(value):
        return ""
    return f"{value:.1f}" if _missing(spread) else f"{value:.1f} ± {spread:.1f}"


def with_interval(value: float | None, low: float | None, high: float | None) -> str:
    """A score with half its interval's width: `23.2 ± 2.5`."""
    return plus_minus(value, None if _missing(low) or _missing(high) else (high - low) / 2)


def humanise_count(count: int | None) -> str:
    """141000 → 141K, 7200000000 → 7.2B; None → "unknown"."""
    if count is None:
        return "unknown"
    if abs(count) < 1000:
        return str(count)
    for size, suffix in ((1e3, "K"), (1e6, "M"), (1e9, "B"), (1e12, "T")):
        shown = f"{count / size:.1f}".removesuffix(".0")
        if abs(float(shown)) < 1000 or suffix == "T":  # 999,999 reads 1M, not 1000K
            return shown + suffix
