"""The shared board's read path as an outside attacker and a careful visitor try it: private models through
cached answers, ETags and 304s, cache poisoning across viewers, cheap requests that cost the server much,
stale data after a hide, and odd query values that must answer 4xx, never 500."""
import httpx
import pytest

from api import board_snapshot, http_cache, request_metrics
from tests.api.test_board_snapshot import (BOARD, TASKS, admin_headers, names, second_api, settle,  # noqa: F401
                                           shown_within, slow_board)
from tests.conftest import make_token
from tests.seed import seed_scored_model


def bearer(name: str) -> dict:
    return {"Authorization": f"Bearer {make_token(name)}"}


def hide(client, model_id: int) -> None:
    response = client.post(f"/api/v1/admin/models/{model_id}/hide", headers=admin_headers(),
                           json={"reason": "test hide"})
    assert response.status_code == 200, response.text


# --- private models through shared answers -------------------------------------------------------------

def test_an_owners_comparison_with_their_hidden_model_is_never_served_to_anyone_else(client):
    secret = seed_scored_model("secret-model", {"world_facts": 0.9, "arithmetic_mc": 0.9}, owner="alice")
    public = seed_scored_model("public-model", TASKS, owner="bob")
    owner = bearer("alice")
    # Alice withdraws hers (it is private now), then compares it on the URL anyone can ask for.
    with board_snapshot.get_engine().begin() as conn:
        conn.exec_driver_sql(f"UPDATE model SET withdrawn = true, hidden = true WHERE id = {secret}")
    board_snapshot.invalidate_signature()
    url = f"/api/v1/compare?ids={secret},{public}"
    mine = client.get(url, headers=owner)
    assert mine.status_code == 200 and "secret-model" in mine.text
    assert mine.headers["cache-control"].startswith("private")  # no proxy keeps it
    # The same URL, anonymously or as another user, with or without her ETag: 404, no 304, no body.
    for headers in ({}, bearer("mallory"), {"If-None-Match": mine.headers["etag"]}, {"If-None-Match": "*"}):
        other = client.get(url, headers=headers)
        assert other.status_code == 404 and "secret-model" not in other.text, headers
    assert client.get(f"/api/v1/models/{secret}", headers={"If-None-Match": "*"}).status_code == 404


def test_a_token_changes_nothing_in_a_shared_board_answer(client):
    """The response cache keys by (ETag, path, query): an answer must not depend on who asked."""
    mine = seed_scored_model("mine", {"world_facts": 0.9, "arithmetic_mc": 0.9}, owner="alice")
    seed_scored_model("theirs", TASKS, owner="bob")
    hide(client, mine)
    for path in (BOARD, f"{BOARD}?include_flagged=true", f"{BOARD}?format=csv", f"{BOARD}/efficiency",
                 f"{BOARD}/facets", f"{BOARD}/tracks", f"/api/v1/compare?ids={mine},2"):
        as_admin = client.get(path, headers=admin_headers())
        anonymous = client.get(path)
        if as_admin.status_code == 200 and as_admin.headers["cache-control"].startswith("public"):
            assert anonymous.content == as_admin.content, path
            assert '"mine"' not in anonymous.text and "mine," not in anonymous.text, path


def test_a_model_hidden_through_one_api_process_leaves_another_within_two_seconds(client, second_api):
    hidden = seed_scored_model("to-hide", {"world_facts": 0.9, "arithmetic_mc": 0.9})
    seed_scored_model("stays", TASKS)
    there = shown_within(f"{second_api}{BOARD}", ["to-hide", "stays"])
    hide(client, hidden)  # through this process: the other learns it from the database only
    gone = shown_within(f"{second_api}{BOARD}", ["stays"])
    assert gone.headers["etag"] != there.headers["etag"]
    for path in (f"{BOARD}/facets", f"{BOARD}/efficiency", f"{BOARD}?format=csv", f"/api/v1/models/{hidden}"):
        assert "to-hide" not in httpx.get(f"{second_api}{path}").text, path


def test_facets_and_track_counts_drop_a_model_hidden_since_the_build(client, slow_board):
    """A large board is rebuilt in the background after a hide: until then the rows are filtered, and the
    facets (licence values, size range, counts) must be too, or they tell the public what was hidden."""
    hidden = seed_scored_model("to-hide", {"world_facts": 0.9, "arithmetic_mc": 0.9},
                               license="secret-licence-of-a-hidden-model", params=987_654_321)
    seed_scored_model("stays", TASKS)
    settle(client, ["to-hide", "stays"])
    before = client.get(f"{BOARD}/facets").json()
    assert "secret-licence-of-a-hidden-model" in before["licenses"] and before["total"] == 2
    with board_snapshot._building:  # the rebuild held back: answers come from the board built before
        hide(client, hidden)
        facets = client.get(f"{BOARD}/facets").json()
        tracks = {t["id"]: t for t in client.get(f"{BOARD}/tracks").json()}
        board = client.get(BOARD).json()
    assert "secret-licence-of-a-hidden-model" not in facets["licenses"]
    assert facets["params_max"] == 1000 and facets["total"] == 1
    assert facets["ranked"] == board["ranked"]  # the page's own count, which leaves hidden rows out
    assert tracks[facets["track"]]["ranked"] + tracks[facets["track"]]["unranked"] == 1
    assert [t["rows"] for t in facets["tracks"] if t["id"] == facets["track"]] == [1]


def test_two_hidden_sets_of_one_board_version_never_share_an_etag():
    """Equal ETags mean 304 for a client holding the other set's answer (rows of a model hidden since).
    These two sets have the same CRC-32, which the ETag used to carry; an owner picking which of their
    own models are withdrawn can find such a pair offline in a second."""
    import zlib
    from types import SimpleNamespace
    first, second = [4, 29, 33, 38, 45], [3, 9, 10, 15, 18, 26, 32, 37, 38, 41, 55, 57]
    assert zlib.crc32(repr(first).encode()) == zlib.crc32(repr(second).encode())
    board = SimpleNamespace(version="v1")
    assert board_snapshot.Served(board, frozenset(first)).etag != board_snapshot.Served(board, frozenset(second)).etag


def test_with_the_external_builder_down_a_reader_is_answered_from_the_board_it_holds(client, monkeypatch):
    """BOARD_BUILDER=external and the builder stopped: after a new result, every board read held its
    threadpool thread for the whole wait (120 s); 40 such reads stall every route of the process."""
    import time
    seed_scored_model("first", TASKS)
    assert names(client.get(BOARD)) == ["first"]
    monkeypatch.setattr(board_snapshot, "_builds_here", lambda: False)
    monkeypatch.setattr(board_snapshot, "WAIT_FOR_BUILDER_S", 3.0)  # 120 in production
    seed_scored_model("second", TASKS)
    started = time.monotonic()
    assert names(client.get(BOARD)) == ["first"]  # the board it holds, while nobody builds the next
    assert time.monotonic() - started < 2.5


def test_an_admins_new_flag_reason_reaches_the_board_and_changes_its_etag(client):
    """Board rows carry the flag reason: an admin correcting it (say, a wrong accusation) must not leave
    the old words on the board, nor let clients keep them by 304."""
    flagged = seed_scored_model("flagged", TASKS, flagged=True)
    first = client.get(f"{BOARD}?include_flagged=true")
    assert "suspected contamination" in first.text
    response = client.post(f"/api/v1/admin/models/{flagged}/flag", headers=admin_headers(),
                           json={"reason": "benchmark items found in the training set"})
    assert response.status_code == 200, response.text
    again = client.get(f"{BOARD}?include_flagged=true", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200 and "benchmark items found" in again.text
    assert "suspected contamination" not in again.text


# --- errors: odd query values answer 4xx --------------------------------------------------------------

ODD_QUERIES = ["sort=-", "sort=--rank", "sort=", "sort=-%20", "columns=", "columns=,", "columns=%20,%20",
               "format=csv&columns=,", 'q="', "q='", 'q=owner:"', "q=%5C", "q=:", "q=owner:", "q=a:b",
               "limit=0", "limit=10001", "limit=-1", "offset=-1", "offset=99999999999999999999",
               "limit=99999999999999999999999", "params_min=-1", "params_min=1e3", "params_min=" + "9" * 400,
               "params_max=" + "9" * 400, "params_min=99999999999999999999", "track=@", "track=" + "x" * 200,
               "family=,,,", "normalised=maybe", "format=xml", "include_flagged=2", "sort=task:nope",
               "sort=%00", "q=%00", "family=%00"]


def test_odd_board_queries_answer_4xx_or_200_never_500(client):
    seed_scored_model("first", TASKS)  # one board for every query: each would otherwise reseed (seconds in all)
    failed = {query: response.text for query in ODD_QUERIES
              if (response := client.get(f"{BOARD}?{query}")).status_code >= 500}
    assert failed == {}


def test_every_column_can_be_sorted_and_exported_alone(client, monkeypatch):
    from api.routes import leaderboard
    monkeypatch.setattr(leaderboard, "EXPORTS_PER_MINUTE", 10_000)  # one export per column here
    seed_scored_model("first", TASKS, efficiency={"tokens_per_s": 9.0})
    seed_scored_model("partial", {"world_facts": 0.5})
    seed_scored_model("flagged", TASKS, flagged=True)
    columns = client.get(f"{BOARD}/facets").json()["columns"]
    failed = [f"{how}{column}" for column in columns for how in ("sort=", "sort=-", "format=csv&columns=")
              if client.get(f"{BOARD}?include_flagged=true&{how}{column}").status_code != 200]
    assert failed == []


ODD_IDS = ["/api/v1/models/99999999999999999999", "/api/v1/models/-1", "/api/v1/compare?ids=1,999999999999",
           "/api/v1/compare?ids=1,1", "/api/v1/compare?ids=1:,2", "/api/v1/compare?ids=1,2&track=@"]


def test_odd_model_and_compare_ids_answer_4xx(client):
    seed_scored_model("first", TASKS)
    assert {path: status for path in ODD_IDS if not 400 <= (status := client.get(path).status_code) < 500} == {}


GARBAGE = ["", ",,,", "W/", '"', "*;q=x", "gzip;q=", "\x7f", "a" * 4000]


def test_garbage_conditional_and_encoding_headers_do_not_break_a_read(client):
    seed_scored_model("first", TASKS)
    answers = {(header, value[:20]): client.get(BOARD, headers={header: value}).status_code
               for header in ("If-None-Match", "Accept-Encoding") for value in GARBAGE}
    assert {k: v for k, v in answers.items() if v not in (200, 304)} == {}


def test_any_accept_encoding_the_gzip_middleware_honours_gets_the_cached_gzip(client):
    """Otherwise the middleware compresses the plain cached body again, at level 9, on every request."""
    for i in range(30):
        seed_scored_model(f"model-{i:02d}", TASKS)
    with client.stream("GET", BOARD, headers={"Accept-Encoding": "gzip"}) as response:
        cached_gzip = b"".join(response.iter_raw())
    for encoding in ("x-gzip", "gzip;q=0, identity", "br, gzip", "gzip"):
        with client.stream("GET", BOARD, headers={"Accept-Encoding": encoding}) as response:
            assert response.headers["content-encoding"] == "gzip", encoding
            assert b"".join(response.iter_raw()) == cached_gzip, encoding


# --- cheap requests that cost much ---------------------------------------------------------------------

def test_a_search_or_a_column_list_cannot_multiply_the_work_per_row(client):
    """Every search word is a pass over every row and every exported column a cell per row: 8,000 words
    took 7.5 s and 2,000 repeats of one column 20 s of CPU at 10,000 rows, for one 16 KB request."""
    seed_scored_model("first", TASKS)
    assert client.get(BOARD, params={"q": " ".join(["a"] * 8000)}).status_code == 422
    assert client.get(BOARD, params={"format": "csv", "columns": ",".join(["model"] * 2000)}).status_code == 422
    assert client.get(BOARD, params={"format": "csv", "columns": "model,overall"}).status_code == 200
    assert names(client.get(BOARD, params={"q": "fir fir first owner:alice owner:alice"})) == ["first"]
    from api.board_view import parse_search
    assert parse_search("a a A owner:x owner:x") == [("model", "a"), ("owner", "x")]


def test_made_up_http_methods_and_paths_add_no_metric_series(client):
    """Every new (method, route) pair is 13 Redis hash fields kept forever and a Prometheus series."""
    request_metrics.flush()
    redis = board_snapshot.get_redis()
    redis.delete(request_metrics.KEY)
    client.get(BOARD)
    request_metrics.flush()
    known = redis.hlen(request_metrics.KEY)
    for i in range(20):
        client.request(f"PROBE{i}", BOARD)
        client.request(f"X{i}", f"/nowhere/{i}")
        client.get(f"/nowhere-{i}/deeper")
        client.get(f"/api/v1/docs-assets-{i}/x.js")
        client.get(f"/docs/assets/made-up-{i}.js")  # under a mount (static files)
        client.get(f"/api/v1/models/{i}/made-up-{i}")
    request_metrics.flush()
    fields = [f.decode() for f in redis.hkeys(request_metrics.KEY)]
    assert not [f for f in fields if "PROBE" in f or f.startswith("X") or "nowhere" in f or "made-up" in f
                or "docs-assets-" in f]
    assert any(f.startswith("OTHER /api/v1/leaderboard|") for f in fields)
    # At most: one unmatched series per known method, beside the board's own.
    assert redis.hlen(request_metrics.KEY) - known <= 2 * (len(request_metrics.BUCKETS) + 2)


def test_a_refused_write_with_a_made_up_token_does_not_make_board_reads_recheck_the_data(client):
    """Anyone can send `POST` with `Authorization: Bearer junk` (401): each one made the next board read
    run the signature query (an md5 over every model row) instead of at most once a second."""
    seed_scored_model("first", TASKS)
    client.get(BOARD)
    before = board_snapshot._state["invalidations"]
    for _ in range(3):
        assert client.post("/api/v1/submissions", headers={"Authorization": "Bearer junk"}, json={}).status_code == 401
    assert board_snapshot._state["invalidations"] == before


def test_sorting_by_a_rare_column_does_not_keep_every_row_decoded(client):
    """`sort=task:X` on each of a track's four views used to decode and keep every row as dicts for the
    board's lifetime (hundreds of MB per process at 10,000 models) for four 100-byte requests."""
    for i in range(5):
        seed_scored_model(f"model-{i}", {"world_facts": 0.3 + i / 10, "arithmetic_mc": 0.5})
    for normalised in ("true", "false"):
        response = client.get(f"{BOARD}?sort=-task:world_facts&normalised={normalised}")
        assert names(response)[0] == "model-4"
    assert names(client.get(f"{BOARD}?sort=model"))[:2] == ["model-0", "model-1"]  # a text column
    views = [v for t in board_snapshot.current().board.tracks.values() for v in t.views.values()]
    # What stays is one value per row for each column sorted by (task cells as floats), never the rows.
    assert not [v for v in views if getattr(v, "_decoded", None) is not None]
    assert not [v for v in views if set(getattr(v, "_sort_keys", {})) - {"model"}]
    assert any("task:world_facts" in v.numbers for v in views)
