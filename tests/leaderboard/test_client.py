"""The board's client against a tiny HTTP server: conditional reads (ETag / If-None-Match / 304) and 404s."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leaderboard.client import ConditionalCache, LeaderboardClient, NotFound


class FakeApi:
    """Serves /api/v1/leaderboard with a body and (optionally) an ETag, answering a matching
    If-None-Match with 304, and records every request's path and If-None-Match header."""

    def __init__(self):
        self.body, self.etag, self.seen = [{"model": "a"}], '"v1"', []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                api.seen.append((self.path, self.headers.get("If-None-Match")))
                if not self.path.startswith("/api/v1/leaderboard"):
                    return self._send(404, json.dumps({"detail": "no model 999"}).encode())
                if api.etag and self.headers.get("If-None-Match") == api.etag:
                    return self._send(304, b"")
                return self._send(200, json.dumps(api.body).encode(), {"X-Total-Count": str(len(api.body))})

            def _send(self, status, body, extra=None):
                self.send_response(status)
                headers = {"Content-Type": "application/json", **(extra or {})}
                if api.etag:
                    headers["ETag"] = api.etag
                for name, value in headers.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def fake_api():
    api = FakeApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


def test_a_repeated_read_revalidates_and_reuses_the_kept_body(fake_api):
    client = LeaderboardClient(base_url=fake_api.url, cache=ConditionalCache())
    assert client.board_records(track="t") == ([{"model": "a"}], 1)
    assert client.board_records(track="t") == ([{"model": "a"}], 1)  # a 304, answered from the kept body
    assert [etag for _, etag in fake_api.seen] == [None, '"v1"']
    fake_api.body, fake_api.etag = [{"model": "a"}, {"model": "b"}], '"v2"'  # the board changed
    assert client.board_records(track="t") == ([{"model": "a"}, {"model": "b"}], 2)
    assert client.board_records(track="t") == ([{"model": "a"}, {"model": "b"}], 2)
    assert [etag for _, etag in fake_api.seen[2:]] == ['"v1"', '"v2"']


def test_each_query_is_validated_on_its_own(fake_api):
    client = LeaderboardClient(base_url=fake_api.url, cache=ConditionalCache())
    client.board_records(track="t")
    client.board_records(track="t", q="carol")  # never read before: asked unconditionally
    assert fake_api.seen[1][1] is None and "q=carol" in fake_api.seen[1][0]


def test_without_an_etag_every_read_is_a_plain_one(fake_api):
    fake_api.etag = None  # a server that does not (yet) send validators
    cache = ConditionalCache()
    client = LeaderboardClient(base_url=fake_api.url, cache=cache)
    for _ in range(3):
        assert client.board_records(track="t") == ([{"model": "a"}], 1)
    assert [etag for _, etag in fake_api.seen] == [None, None, None] and len(cache) == 0


def test_the_cache_keeps_only_the_most_recent_urls(fake_api):
    cache = ConditionalCache(size=2)
    client = LeaderboardClient(base_url=fake_api.url, cache=cache)
    for query in ("a", "b", "c"):
        client.board_records(q=query)
    assert len(cache) == 2
    client.board_records(q="a")  # the oldest was dropped: asked unconditionally again
    assert fake_api.seen[-1][1] is None


def test_a_large_answer_is_not_kept(fake_api):
    cache = ConditionalCache(max_bytes=10)
    client = LeaderboardClient(base_url=fake_api.url, cache=cache)
    client.board_records(track="t")
    client.board_records(track="t")
    assert [etag for _, etag in fake_api.seen] == [None, None] and len(cache) == 0


def test_a_404_is_not_found_with_the_apis_words(fake_api):
    client = LeaderboardClient(base_url=fake_api.url, cache=ConditionalCache())
    with pytest.raises(NotFound, match="no model 999"):
        client.model(999)


def test_against_the_real_api_a_change_is_seen_at_once(api_url):
    """Whether or not the API sends ETags, a repeated read answers the same rows, and a new score shows
    on the next read (a kept body is reused only when the API says it is still current)."""
    from tests.seed import seed_scored_model
    first = seed_scored_model("first-model", {"world_facts": 0.85})
    client = LeaderboardClient(base_url=api_url, cache=ConditionalCache())
    read = lambda: [r["model"] for r in client.board_records(columns=["model"])[0]]  # noqa: E731
    assert read() == read() == ["first-model"]
    for _ in range(2):
        assert client.model(first)["model"]["name"] == "first-model"
    seed_scored_model("second-model", {"world_facts": 0.95})
    assert read() == ["second-model", "first-model"]


def test_the_cache_stays_within_its_byte_budget(fake_api):
    # Many distinct searches, each answer under the per-answer cap: the total is capped too.
    cache = ConditionalCache(total_bytes=3 * len(json.dumps(fake_api.body).encode()))
    client = LeaderboardClient(base_url=fake_api.url, cache=cache)
    for query in range(10):
        client.board_records(q=str(query))
    assert cache.bytes <= cache.total_bytes and len(cache) == 3
