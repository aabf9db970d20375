"""Typed reads of the Evalboard API: the leaderboard knows the service only through HTTP."""
import os
from dataclasses import dataclass, field

import httpx


class ApiUnavailable(Exception):
    """The API could not be reached or answered with an error; the message says which."""


@dataclass
class LeaderboardClient:
    base_url: str = field(default_factory=lambda: os.environ.get("EVALBOARD_API_URL")
                          or os.environ.get("API_URL", "http://127.0.0.1:8000"))
    timeout: float = 10.0

    def _get(self, path: str, **params) -> dict | list:
        try:
            response = httpx.get(f"{self.base_url.rstrip('/')}/api/v1{path}", params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"the Evalboard API at {self.base_url} cannot be reached ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise ApiUnavailable(f"the Evalboard API answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def leaderboard(self, limit: int = 1000, offset: int = 0, family: str | None = None) -> dict:
        params = {"limit": limit, "offset": offset}
        if family:
            params["family"] = family
        return self._get("/leaderboard", **params)

    def suites(self) -> list[dict]:
        return self._get("/suites")
