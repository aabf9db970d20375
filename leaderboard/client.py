"""Typed reads of the Evalboard API: the leaderboard knows the service only through HTTP."""
import json
import os
from dataclasses import dataclass, field

import httpx


class ApiUnavailable(Exception):
    """The API could not be reached or answered with an error; the message says which."""


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

    def _request(self, path: str, params: dict | None = None) -> httpx.Response:
        try:
            response = httpx.get(f"{self.base_url.rstrip('/')}/api/v1{path}", params=_clean(params or {}),
                                 timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"the Evalboard API at {self.base_url} cannot be reached ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise ApiUnavailable(f"the Evalboard API answered {response.status_code}: {_detail(response)}")
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
