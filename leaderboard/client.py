"""Typed reads of the Evalboard API: the leaderboard knows the service only through HTTP.

Reads are conditional: the last answer to each URL (with its query) is kept with its `ETag`, and the
next read of it sends `If-None-Match`; a `304 Not Modified` reuses the kept body, so a board that
nobody changes costs the API a header comparison per rerun, not a re-serialised page.
"""
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import httpx


class ApiUnavailable(Exception):
    """The API could not be reached or answered with an error; the message says which."""


class NotFound(ApiUnavailable):
    """The API answered 404: what was asked for does not exist (or is not visible); the message is its detail."""


# What a replayed answer needs; not Content-Encoding/Length, which describe the bytes as sent, not as kept.
KEPT_HEADERS = ("content-type", "etag", "x-total-count", "x-track", "content-disposition")


class ConditionalCache:
    """The last (ETag, answer) per URL, the least recently used dropped beyond `size` entries or `total_bytes`
    in all; answers over `max_bytes` are not kept. Shared by every Streamlit session of the process (a lock,
    as each session runs in its own thread)."""

    def __init__(self, size: int = 256, max_bytes: int = 2_000_000, total_bytes: int = 64_000_000):
        self.size, self.max_bytes, self.total_bytes, self.bytes = size, max_bytes, total_bytes, 0
        self._entries: OrderedDict[str, tuple[str, dict[str, str], bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def etag(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            return entry[0] if entry else None

    def replay(self, key: str, request: httpx.Request) -> httpx.Response | None:
        """The kept answer to `key` as a fresh 200 response (None when nothing is kept)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        _, headers, content = entry
        return httpx.Response(200, headers=headers, content=content, request=request)

    def keep(self, key: str, response: httpx.Response) -> None:
        etag = response.headers.get("etag")
        with self._lock:
            # An answer without a validator cannot be revalidated; a large one (a whole-board export) is
            # not worth its memory: neither is kept.
            previous = self._entries.pop(key, None)
            self.bytes -= len(previous[2]) if previous else 0
            if not etag or len(response.content) > self.max_bytes:
                return
            headers = {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers}
            self._entries[key] = (etag, headers, response.content)
            self.bytes += len(response.content)
            while len(self._entries) > self.size or self.bytes > self.total_bytes:
                self.bytes -= len(self._entries.popitem(last=False)[1][2])

    def __len__(self) -> int:
        return len(self._entries)


CACHE = ConditionalCache()


def _detail(response: httpx.Response) -> str:
    try:
        return response.json().get("detail") or response.text[:200]
    except (ValueError, AttributeError):
        return response.text[:200]


@dataclass
class LeaderboardClient:
    base_url: str = field(default_factory=lambda: os.environ.get("EVALBOARD_API_URL")
                          or os.environ.get("API_URL", "http://127.0.0.1:8000"))
    timeout: float = 10.0
    cache: ConditionalCache = field(default_factory=lambda: CACHE)

    def _request(self, path: str, params: dict | None = None) -> httpx.Response:
        url = httpx.URL(f"{self.base_url.rstrip('/')}/api/v1{path}", params=_clean(params or {}))
        key = str(url)
        etag = self.cache.etag(key)
        try:
            response = httpx.get(url, timeout=self.timeout, headers={"If-None-Match": etag} if etag else None)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"the Evalboard API at {self.base_url} cannot be reached ({type(exc).__name__})") from exc
        if response.status_code == 304:
            kept = self.cache.replay(key, response.request)
            if kept is None:  # dropped between the two looks: ask again, unconditionally
                return self._unconditional(url)
            return kept
        return self._checked(key, response)

    def _unconditional(self, url: httpx.URL) -> httpx.Response:
        try:
            response = httpx.get(url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"the Evalboard API at {self.base_url} cannot be reached ({type(exc).__name__})") from exc
        return self._checked(str(url), response)

    def _checked(self, key: str, response: httpx.Response) -> httpx.Response:
        if response.status_code == 404:
            raise NotFound(str(_detail(response)))
        if response.status_code >= 400:
            raise ApiUnavailable(f"the Evalboard API answered {response.status_code}: {_detail(response)}")
        self.cache.keep(key, response)
        return response

    def _get(self, path: str, **params) -> dict | list:
        return self._request(path, params).json()

    def leaderboard(self, limit: int = 1000, offset: int = 0, **filters) -> dict:
        """The ranked rows as the API nests them (fractions, 0..1)."""
        return self._get("/leaderboard", limit=limit, offset=offset, **filters)

    def board_records(self, **params) -> tuple[list[dict], int]:
        """The board's rows exactly as shown and exported (display units), and how many match in all."""
        response = self._request("/leaderboard", {**params, "format": "json"})
        return response.json(), int(response.headers.get("x-total-count", "0"))

    def export(self, fmt: str, **params) -> bytes:
        """The board as a CSV or JSON file, straight from the API."""
        return self._request("/leaderboard", {**params, "format": fmt}).content

    def facets(self, track: str | None = None) -> dict:
        """The track's filters and columns (the default track when None), and every track to choose from."""
        return self._get("/leaderboard/facets", track=track)

    def tracks(self) -> list[dict]:
        """Every track with its aggregation rules (required tasks, weights, precisions) and row counts."""
        return self._get("/leaderboard/tracks")

    def efficiency(self, metric: str | None = None) -> dict:
        return self._get("/leaderboard/efficiency", metric=metric)

    def model(self, model_id: int) -> dict:
        return self._get(f"/models/{model_id}")

    def compare(self, ids: list[int | str], track: str | None = None) -> dict:
        """Rows side by side on one track: `ids` are model ids or `id:precision` row ids, the first the reference."""
        return self._get("/compare", ids=",".join(str(i) for i in ids), track=track)

    def queue(self) -> dict:
        return self._get("/queue")

    def suites(self) -> list[dict]:
        return self._get("/suites")

    def aggregation(self) -> dict:
        return self._get("/aggregation")

    def samples(self, run_id: str) -> list[dict]:
        """A run's per-sample records (input, target, prediction, metrics)."""
        text = self._request(f"/runs/{run_id}/samples.jsonl").text
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _clean(params: dict) -> dict:
    """Drop unset filters; lists become comma-separated values, booleans lower-case words."""
    clean = {}
    for key, value in params.items():
        if value is None or value == [] or value == "":
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        clean[key] = value
    return clean
