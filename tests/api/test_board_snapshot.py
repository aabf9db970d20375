"""One published board for every API process: what a reader of the board notices — answers that agree
across processes, new results within seconds, hidden models gone at once, cheap repeat reads (304)."""
import gzip
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from api import board_snapshot
from core.models import Status
from tests.conftest import DATABASE_URL
from tests.seed import seed_scored_model

ROOT = Path(__file__).resolve().parents[2]
BOARD = "/api/v1/leaderboard"
TASKS = {"world_facts": 0.8, "arithmetic_mc": 0.7}


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["model"] for r in response.json()["rows"]]


def admin_headers() -> dict:
    from core.crud import create_token, create_user
    from core.db import session_scope
    from core.models import Role
    with session_scope() as s:
        return {"Authorization": f"Bearer {create_token(session=s, user=create_user(session=s, name='root', role=Role.admin))}"}


def test_a_matching_etag_gets_304_with_no_body_and_a_new_result_a_new_etag(client):
    seed_scored_model("first", TASKS)
    response = client.get(BOARD)
    etag = response.headers["etag"]
    assert response.headers["cache-control"].startswith("public, max-age=")
    again = client.get(BOARD, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    # Every board read carries the same version; a weak form of it matches too (RFC 9110, GET).
    for path in (f"{BOARD}/facets", f"{BOARD}/tracks", f"{BOARD}/efficiency"):
        tag = client.get(path).headers["etag"]
        assert client.get(path, headers={"If-None-Match": f"W/{tag}"}).status_code == 304
    seed_scored_model("second", {"world_facts": 0.9, "arithmetic_mc": 0.9})
    fresh = client.get(BOARD, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and names(fresh) == ["second", "first"] and fresh.headers["etag"] != etag


def test_large_answers_are_gzipped_for_clients_that_accept_it(client):
    for i in range(30):
        seed_scored_model(f"model-{i:02d}", {"world_facts": 0.3 + i / 100, "arithmetic_mc": 0.5})
    plain = client.get(BOARD, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    packed = client.get(BOARD, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert packed.json() == plain.json()  # httpx undid the gzip
    with client.stream("GET", BOARD, headers={"Accept-Encoding": "gzip"}) as response:
        body = b"".join(response.iter_raw())
    assert len(body) < len(plain.content) / 3 and gzip.decompress(body) == plain.content


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def second_api():
    """Another API process on the same database and Redis, as a second uvicorn worker would be."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port",
                             str(port), "--log-level", "warning"], cwd=ROOT, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "the second API did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def shown_within(url: str, expected: list[str], seconds: float = 2.0) -> httpx.Response:
    started = time.monotonic()
    while True:
        response = httpx.get(url)
        if names(response) == expected:
            return response
        assert time.monotonic() - started < seconds, f"{url} still shows {names(response)}, not {expected}"
        time.sleep(0.05)


def test_a_run_finished_by_a_worker_reaches_another_api_process_within_two_seconds(client, second_api):
    seed_scored_model("first", TASKS)
    here = client.get(BOARD)
    shown_within(f"{second_api}{BOARD}", ["first"], seconds=30)  # its start-up load may still run
    # The same published board (same version in the ETag), not one built per process. (A build that began
    # before the seeding commit and read after it is published, then rebuilt once: hence "settles".)
    deadline = time.monotonic() + 10
    while httpx.get(f"{second_api}{BOARD}").headers["etag"] != client.get(BOARD).headers["etag"]:
        assert time.monotonic() < deadline, "the two API processes never served the same board version"
        board_snapshot.invalidate_signature()
        time.sleep(0.1)
    assert names(here) == ["first"]
    builds = int(board_snapshot.get_redis().get(board_snapshot.KEY_BUILDS))
    # A worker (another process) finishes a run: a new model's scores arrive in the database only.
    seed_scored_model("newcomer", {"world_facts": 0.95, "arithmetic_mc": 0.95})
    board_snapshot.forget_local()  # this process learns nothing from the seeding commit either
    shown_within(f"{second_api}{BOARD}", ["newcomer", "first"])
    assert names(client.get(BOARD)) == ["newcomer", "first"]
    assert int(board_snapshot.get_redis().get(board_snapshot.KEY_BUILDS)) == builds + 1  # one build for both


def settle(client, expected: list[str]) -> None:
    """Wait for the background rebuild a slow board answers beside (the first answers may be the old board)."""
    deadline = time.monotonic() + 10
    while names(client.get(BOARD)) != expected:
        assert time.monotonic() < deadline, "the board never showed the seeded models"
        board_snapshot.invalidate_signature()
        time.sleep(0.05)


@pytest.fixture
def slow_board(monkeypatch):
    """Every board counts as slow to build: requests are answered from the published one while the
    successor builds in the background (as at 10,000 models)."""
    monkeypatch.setattr(board_snapshot, "FAST_BUILD_S", 0.0)
    monkeypatch.setattr(board_snapshot, "REBUILD_EVERY_BUILDS", 0)


def test_a_hidden_model_disappears_from_every_cached_view_at_once(client, slow_board):
    hidden = seed_scored_model("to-hide", {"world_facts": 0.9, "arithmetic_mc": 0.9}, efficiency={"tokens_per_s": 9.0})
    seed_scored_model("stays", TASKS, efficiency={"tokens_per_s": 5.0})
    seed_scored_model("flagged", TASKS, flagged=True)
    settle(client, ["to-hide", "stays"])
    views = [f"{BOARD}", f"{BOARD}?q=t", f"{BOARD}?include_flagged=true", f"{BOARD}?normalised=false",
             f"{BOARD}?sort=-params", f"{BOARD}?format=csv", f"{BOARD}/efficiency"]
    before = {view: client.get(view) for view in views}
    assert [v for v, r in before.items() if "to-hide" not in r.text] == []
    headers = admin_headers()
    # Hold the rebuild back: whatever answers next comes from the board built before the hide.
    with board_snapshot._building:
        assert client.post(f"/api/v1/admin/models/{hidden}/hide", headers=headers,
                           json={"reason": "test"}).status_code == 200
        for view in views:
            response = client.get(view, headers={"If-None-Match": before[view].headers["etag"]})
            assert response.status_code == 200, view  # a new ETag: no client keeps the old answer
            assert "to-hide" not in response.text, view
            assert "stays" in response.text, view
    assert client.get(f"/api/v1/models/{hidden}").status_code == 404


def test_a_burst_of_finished_runs_costs_one_rebuild_not_one_each(client, slow_board):
    seed_scored_model("first", TASKS)
    settle(client, ["first"])
    builds = int(board_snapshot.get_redis().get(board_snapshot.KEY_BUILDS))
    with board_snapshot._building:  # a build in progress elsewhere: the burst arrives meanwhile
        for i in range(5):
            seed_scored_model(f"burst-{i}", TASKS)
            client.get(BOARD)
    deadline = time.monotonic() + 10
    while len(names(client.get(BOARD))) != 6:
        assert time.monotonic() < deadline, "the burst never reached the board"
        board_snapshot.invalidate_signature()
        time.sleep(0.05)
    assert int(board_snapshot.get_redis().get(board_snapshot.KEY_BUILDS)) - builds <= 2


def test_no_request_builds_while_another_builder_holds_the_lock(client, monkeypatch):
    monkeypatch.setattr(board_snapshot, "WAIT_FOR_BUILDER_S", 0.5)
    redis = board_snapshot.get_redis()
    board_snapshot.wait_for_warm()
    redis.flushdb()  # nothing published yet (not even the empty board the API may have built at start)
    seed_scored_model("first", TASKS)
    redis.set(board_snapshot.KEY_LOCK, "another-builder", px=10_000)
    board_snapshot.forget_local()
    response = client.get(BOARD)  # nothing published and the builder silent: a clear 503, no build here
    assert response.status_code == 503 and "being built" in response.json()["detail"]
    assert redis.get(board_snapshot.KEY_BUILDS) is None
    redis.delete(board_snapshot.KEY_LOCK)
    assert names(client.get(BOARD)) == ["first"]


def test_metrics_show_latency_per_route_template_and_the_board(client):
    from api import request_metrics
    model = seed_scored_model("first", TASKS)
    request_metrics.flush()  # what earlier tests' requests left in this process's counts
    board_snapshot.get_redis().delete(request_metrics.KEY)
    for _ in range(3):
        client.get(BOARD)
    client.get(f"/api/v1/models/{model}")
    client.get("/api/v1/models/987654")
    request_metrics.flush()
    text = client.get("/metrics").text
    assert 'evalboard_http_request_duration_seconds_count{method="GET",route="/api/v1/leaderboard"} 3' in text
    # Ids never become series of their own: both model reads count under the route's template.
    assert 'evalboard_http_request_duration_seconds_count{method="GET",route="/api/v1/models/{model_id}"} 2' in text
    assert "987654" not in text
    builds = int(re.search(r"^evalboard_board_builds_total (\d+)$", text, re.M).group(1))
    assert builds >= 1 and "evalboard_board_age_seconds" in text


def test_the_model_page_answers_304_while_nothing_about_it_changed(client):
    model = seed_scored_model("first", TASKS)
    first = client.get(f"/api/v1/models/{model}")
    assert client.get(f"/api/v1/models/{model}",
                      headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("UPDATE model SET license = 'Apache-2.0'")
    changed = client.get(f"/api/v1/models/{model}", headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.json()["model"]["license"] == "Apache-2.0"


def test_gzip_of_a_cached_answer_is_made_once():
    from api.http_cache import Encoded
    entry = Encoded(b"x" * 5000, "application/json")
    first = entry.gzip()
    assert entry.gzip() is first and gzip.decompress(first) == entry.body


def test_distinct_queries_cannot_make_the_answer_cache_hold_more_than_its_budget(client, monkeypatch):
    from api import http_cache
    monkeypatch.setattr(http_cache, "responses", http_cache.ResponseCache(max_bytes=50_000))
    for i in range(12):
        seed_scored_model(f"model-{i:02d}", {"world_facts": 0.3 + i / 100, "arithmetic_mc": 0.5})
    for i in range(200):
        assert client.get(f"{BOARD}?limit=1000&offset={i % 12}&sort=-params&q=model-{i % 10}").status_code == 200
    assert http_cache.responses.bytes <= 50_000
    # An answer larger than any page (a whole-board export) is never kept.
    monkeypatch.setattr(http_cache, "LARGEST_CACHED", 100)
    assert client.get(f"{BOARD}?limit=1000&q=model").status_code == 200
    assert ("limit", "1000") not in {p for key in http_cache.responses._entries for p in key[2] if key[2] and
                                      ("q", "model") in key[2]}


def test_junk_parameters_name_the_same_cached_answer(client):
    from api import http_cache
    seed_scored_model("first", TASKS)
    client.get(BOARD)
    before = len(http_cache.responses._entries)
    for i in range(50):
        assert names(client.get(f"{BOARD}?junk={i}&x{i}=1")) == ["first"]
    assert len(http_cache.responses._entries) == before


def test_large_exports_are_limited_per_client_address(client):
    from api.routes import leaderboard
    seed_scored_model("first", TASKS)
    answers = [client.get(f"{BOARD}?format=csv&offset={i}") for i in range(leaderboard.EXPORTS_PER_MINUTE + 1)]
    assert all(a.status_code == 200 for a in answers[:-1])
    assert answers[-1].status_code == 429 and int(answers[-1].headers["retry-after"]) <= 60
    assert "exports" in answers[-1].json()["detail"]
    assert client.get(BOARD).status_code == 200  # pages stay free


def test_the_model_page_shows_the_runs_behind_the_boards_numbers(client):
    # Two submissions of one model: a complete float32 one (its board row) and a later bfloat16 one of one
    # task. The page's numbers for the row's tasks are the float32 submission's, as on the board.
    from sqlmodel import select

    from core.db import session_scope
    from core.models import Model, Precision, Run, Score, Status, Submission, utcnow
    model_id = seed_scored_model("twice", {"world_facts": 0.8, "arithmetic_mc": 0.7})
    with session_scope() as s:
        first = s.exec(select(Submission).where(Submission.model_id == model_id)).one()
        later = Submission(model_id=model_id, checkpoint_id=first.checkpoint_id, submitted_by=first.submitted_by,
                           suite=first.suite, hardware_class="cpu", precision=Precision.bfloat16,
                           status=Status.finished, finished_at=utcnow())
        s.add(later)
        s.flush()
        run = Run(submission_id=later.id, task="world_facts", capability="understanding", status=Status.finished,
                  finished_at=utcnow(), started_at=utcnow(), progress=1.0)
        s.add(run)
        s.flush()
        s.add(Score(run_id=run.id, metric="acc", value=0.1, stderr=0.03, n=200, primary=True))
        assert s.get(Model, model_id) is not None
    detail = client.get(f"/api/v1/models/{model_id}").json()
    row = next(r for r in client.get(BOARD).json()["rows"] if r["model_id"] == model_id and r["precision"] == "float32")
    assert detail["board"]["submission_id"] == row["submission_id"] == str(first.id)
    world = next(t for t in detail["tasks"] if t["task"] == "world_facts")
    assert world["raw"] == row["tasks"]["world_facts"]["raw"] == 0.8 and world["on_board"]


@pytest.fixture
def external_builder(monkeypatch):
    """BOARD_BUILDER=external, as compose runs the API, with `evalboard board-builder`'s loop in a thread."""
    import threading

    from core.config import get_settings
    monkeypatch.setenv("BOARD_BUILDER", "external")
    get_settings.cache_clear()
    builders = []
    real_build = board_snapshot.build_and_publish

    def recorded(signature):
        builders.append(threading.current_thread().name)
        return real_build(signature)
    monkeypatch.setattr(board_snapshot, "build_and_publish", recorded)
    stop = threading.Event()
    thread = threading.Thread(target=board_snapshot.run_builder, args=(stop, 0.1), name="board-builder")
    thread.start()
    yield builders
    stop.set()
    thread.join(10)
    get_settings.cache_clear()


def test_with_an_external_builder_requests_never_build_and_follow_its_publications(external_builder, client):
    seed_scored_model("first", TASKS)
    settle(client, ["first"])
    seed_scored_model("second", {"world_facts": 0.95, "arithmetic_mc": 0.95})
    settle(client, ["second", "first"])
    assert external_builder and set(external_builder) == {"board-builder"}  # no request thread ever built
    hidden = seed_scored_model("third", {"world_facts": 0.99, "arithmetic_mc": 0.99})
    settle(client, ["third", "second", "first"])
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:  # as an admin in another process would
        conn.execute("UPDATE model SET hidden = true WHERE id = %s", (hidden,))
    board_snapshot.invalidate_signature()
    assert names(client.get(BOARD)) == ["second", "first"]


def test_the_anonymous_queue_is_made_once_a_second_and_anew_after_a_commit(client, monkeypatch):
    from api.routes import queue
    from tests.seed import seed_submission
    made = []
    real = queue.live_queue
    monkeypatch.setattr(queue, "live_queue", lambda **kw: made.append(kw["viewer"]) or real(**kw))
    for _ in range(5):
        client.get("/api/v1/queue")
    assert made == [None]
    seed_submission("waiting", {"world_facts": Status.queued})  # a commit in this process
    body = client.get("/api/v1/queue").json()
    assert [s["model"] for s in body["submissions"]] == ["waiting"] and len(made) == 2
