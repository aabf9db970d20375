"""One board for every API process: built by one process per data change, published to Redis, loaded by all.

What the board shows depends on finished runs and on the models' visible attributes; their signature
(SIGNATURE_SQL) is read at most once per CHECK_EVERY_S per process (and at once after a commit in the
process). When it differs from the published board's, one builder — whoever takes the Redis build
lock: an API process, or the dedicated `evalboard board-builder` when BOARD_BUILDER=external — builds
the board (api/board.py), compiles it (api/served_board.py) and publishes it; every process loads the
new version on its next check, in milliseconds. No request ever builds while another builder works,
and a burst of finished runs costs one rebuild: the build that starts next covers them all.

A board that builds fast (under FAST_BUILD_S: every test, any board of a few hundred models) is waited
for, so a result shows on the next request. A slow one (thousands of models) keeps serving the
previous version while the successor builds, and is rebuilt at most every REBUILD_EVERY_BUILDS × its
build time however often results arrive. A model hidden since the build disappears at once: the
signature query also returns the hidden models, and every view drops their rows until the rebuild.

Trust: snapshots are pickled. Redis is inside the service's trust boundary (RQ pickles its jobs through
it too); the evaluation child cannot reach it (no network), and nothing an author sends is unpickled.
"""
import hashlib
import json
import logging
import pickle
import secrets
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import event, text
from starlette.concurrency import run_in_threadpool
from sqlmodel import Session

from api.board import load_board
from api.served_board import ServedBoard, compile_board
from core.config import get_settings
from core.db import get_engine
from core.errors import EvalboardError
from runners.dispatch import get_redis

log = logging.getLogger("evalboard.board")

SIGNATURE_SQL = text("""
    SELECT (SELECT count(*) FROM run WHERE status = 'finished'),
           (SELECT max(finished_at) FROM run WHERE status = 'finished'),
           (SELECT md5(coalesce(string_agg(concat_ws('|', id, name, hidden, flagged, flag_reason, license, params,
                                                     family, owner_id), ',' ORDER BY id), '')) FROM model),
           (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM model WHERE hidden)
""")
HIDDEN_SQL = text("SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM model WHERE hidden")
KEY_CURRENT = "evalboard:board:current"
KEY_SNAPSHOT = "evalboard:board:snapshot:{version}"
KEY_ROWS = "evalboard:board:rows:{version}"
KEY_LOCK = "evalboard:board:build-lock"
KEY_BUILDS = "evalboard:board:builds"  # a counter: every build any builder published
# A replaced snapshot stays this long, for a process that read its version just before the switch.
REPLACED_KEPT_S = 120
LOCK_TTL_S = 30  # renewed every LOCK_TTL_S / 3 while the build runs: a builder that dies frees it soon
CHECK_EVERY_S = 1.0
FAST_BUILD_S = 1.0
REBUILD_EVERY_BUILDS = 4
WAIT_FOR_BUILDER_S = 120.0
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"


class BoardNotReadyError(EvalboardError):
    """Nothing published yet and the builder at work (503: try again shortly)."""


@dataclass(frozen=True)
class Served:
    """What a request reads: the board, and the models hidden since (their rows are left out)."""
    board: ServedBoard
    hidden: frozenset[int]

    @property
    def etag(self) -> str:
        """Changes with the published version and with the hidden set: a strong validator of every board view."""
        # 64 bits, not a CRC: an owner choosing which of their models are withdrawn could match a CRC-32 of an
        # earlier hidden set, and clients holding that set's answers would get 304 for them.
        hidden = hashlib.blake2b(repr(sorted(self.hidden)).encode(), digest_size=8).hexdigest()
        return f'"{self.board.version}.{hidden}"'


_state: dict = {"board": None, "checked_at": float("-inf"), "hidden": frozenset(), "invalidations": 0}
_lock = threading.Lock()
_building = threading.Lock()  # one build at a time in this process


def invalidate_signature(*_args) -> None:
    """The next request reads the signature again (called after every commit in this process)."""
    with _lock:
        _state["checked_at"] = float("-inf")
        _state["invalidations"] += 1


# Any commit in this process may have changed what the board shows: the session is the one place
# all of the API's writes (and the tests' seeding) go through.
event.listen(Session, "after_commit", invalidate_signature)


def read_signature() -> tuple[str, frozenset[int]]:
    """The data the board depends on, and the hidden models. On a connection of its own, closed at once: a
    request waiting for a builder must hold no transaction (a TRUNCATE or migration would wait on it, and
    the builder's query on that)."""
    with get_engine().connect() as connection:
        count, latest, models, hidden = connection.execute(SIGNATURE_SQL).one()
    return f"{count}|{latest.isoformat() if latest else ''}|{models}", frozenset(hidden)


def read_hidden() -> frozenset[int]:
    with get_engine().connect() as connection:
        return frozenset(connection.execute(HIDDEN_SQL).scalar_one())


def published() -> dict | None:
    raw = get_redis().get(KEY_CURRENT)
    return json.loads(raw) if raw else None


def _load(version: str) -> ServedBoard | None:
    raw = get_redis().get(KEY_SNAPSHOT.format(version=version))
    return pickle.loads(raw) if raw else None


def _load_in_background(version: str) -> None:
    with _lock:
        if _state.get("loading") == version:
            return
        _state["loading"] = version

    def load() -> None:
        try:
            loaded = _load(version)
            with _lock:
                current = _state["board"]
                if loaded is not None and (current is None or current.built_at <= loaded.built_at):
                    _state["board"] = loaded
        finally:
            with _lock:
                _state["loading"] = None
    threading.Thread(target=load, daemon=True, name="board-load").start()


def build_and_publish(signature: str) -> ServedBoard:
    """Build the board from the database, compile it, and make it the published one. Hold the build lock."""
    started = time.perf_counter()
    with Session(get_engine()) as session:
        board = load_board(session)
    version = f"{int(time.time() * 1000):x}{secrets.token_hex(3)}"
    served = compile_board(board, version, time.time())
    redis = get_redis()
    previous = published()
    pipe = redis.pipeline(transaction=False)
    pipe.set(KEY_SNAPSHOT.format(version=version), pickle.dumps(served, protocol=pickle.HIGHEST_PROTOCOL))
    rows = [(f"{track}|{row.row_id}", pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL))
            for track, track_rows in board.tracks.items() for row in track_rows]
    for start in range(0, len(rows), 5000):
        pipe.hset(KEY_ROWS.format(version=version), mapping=dict(rows[start:start + 5000]))
    pipe.execute()
    meta = {"version": version, "signature": signature, "built_at": served.built_at,
            "build_s": time.perf_counter() - started}
    pipe = redis.pipeline(transaction=True)
    pipe.set(KEY_CURRENT, json.dumps(meta))
    pipe.incr(KEY_BUILDS)
    if previous:
        pipe.expire(KEY_SNAPSHOT.format(version=previous["version"]), REPLACED_KEPT_S)
        pipe.expire(KEY_ROWS.format(version=previous["version"]), REPLACED_KEPT_S)
    pipe.execute()
    log.info("board %s published: built in %.2f s", version, meta["build_s"])
    return served


def compared_rows(board: ServedBoard, track_id: str, row_ids: list[str]) -> dict:
    """The published rows (with their per-item results) of these row ids on a track, for /compare."""
    values = get_redis().hmget(KEY_ROWS.format(version=board.version), [f"{track_id}|{r}" for r in row_ids])
    return {row_id: pickle.loads(v) for row_id, v in zip(row_ids, values) if v is not None}


class _BuildLock:
    """The Redis lock one builder holds while it builds, renewed as the build goes on."""

    def __init__(self):
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()

    def acquire(self) -> bool:
        if not get_redis().set(KEY_LOCK, self.token, nx=True, px=LOCK_TTL_S * 1000):
            return False
        threading.Thread(target=self._renew, daemon=True, name="board-lock").start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(LOCK_TTL_S / 3):
            get_redis().eval(_RENEW, 1, KEY_LOCK, self.token, LOCK_TTL_S * 1000)

    def release(self) -> None:
        self._stop.set()
        get_redis().eval(_RELEASE, 1, KEY_LOCK, self.token)


def _due(meta: dict | None) -> bool:
    """A slow board is rebuilt at most every REBUILD_EVERY_BUILDS × its build time: while workers finish
    runs every few seconds, back-to-back rebuilds would take the readers' CPU."""
    if meta is None or meta["build_s"] < FAST_BUILD_S:
        return True
    return time.time() - meta["built_at"] >= REBUILD_EVERY_BUILDS * meta["build_s"]


def try_build(signature: str, meta: dict | None) -> ServedBoard | None:
    """Build and publish if no other builder holds the lock and a rebuild is due; None otherwise."""
    if not _due(meta) or not _building.acquire(blocking=False):
        return None
    try:
        lock = _BuildLock()
        if not lock.acquire():
            return None
        try:
            current = published()  # another builder may have published this signature meanwhile
            if current and current["signature"] == signature:
                return _load(current["version"])
            return build_and_publish(signature)
        finally:
            lock.release()
    finally:
        _building.release()


def _builds_here() -> bool:
    return get_settings().board_builder != "external"


def _newest(board: ServedBoard | None, meta: dict) -> ServedBoard | None:
    """The published version: loaded now when this process has none or it is small, else in the background
    (the current board answers until it is in)."""
    if board is None or (board.version != meta["version"] and meta["build_s"] < FAST_BUILD_S):
        return _load(meta["version"]) or board
    if board.version != meta["version"]:
        _load_in_background(meta["version"])
    return board


def _wait_for_publication(board: ServedBoard | None, signature: str | None) -> ServedBoard:
    """Another builder is at work: wait for its publication (of this signature, or any when this process
    has no board), building here if its lock goes while this process may build."""
    deadline = time.monotonic() + WAIT_FOR_BUILDER_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
        meta = published()
        if meta and (board is None or meta["signature"] == signature):
            loaded = _load(meta["version"])
            if loaded is not None:
                return loaded
        if _builds_here() and not get_redis().exists(KEY_LOCK):
            built = try_build(signature, meta)
            if built is not None:
                return built
    if board is not None:
        return board
    raise BoardNotReadyError("the leaderboard is being built; try again in a minute")


def _refresh(board: ServedBoard | None) -> tuple[ServedBoard, frozenset[int]]:
    if not _builds_here():
        # The builder watches the data; this process follows what it publishes, and the hidden models.
        hidden, meta = read_hidden(), published()
        board = _newest(board, meta) if meta else board
        return (board if board is not None else _wait_for_publication(None, None)), hidden
    signature, hidden = read_signature()
    meta = published()
    if meta and meta["signature"] == signature:
        board = _newest(board, meta)
        if board is not None:
            return board, hidden
    slow = meta is not None and meta["build_s"] >= FAST_BUILD_S
    if board is None and meta:
        board = _load(meta["version"])
    if slow and board is not None:
        # Serve the previous version; the rebuild runs beside the requests.
        threading.Thread(target=try_build, args=(signature, meta), daemon=True, name="board-build").start()
        return board, hidden
    built = try_build(signature, meta)
    if built is not None:
        return built, hidden
    return _wait_for_publication(board, signature), hidden


def fresh() -> Served | None:
    """The board this process holds, if checked within CHECK_EVERY_S: no I/O, so an async route can answer
    from it without a thread (else it calls `current` in one)."""
    with _lock:
        board = _state["board"]
        if board is not None and time.monotonic() - _state["checked_at"] < CHECK_EVERY_S:
            return Served(board, _state["hidden"])
    return None


async def served() -> Served:
    """For async routes: the fresh board at once, else `current` (which may read the database, or wait
    for a builder) in the thread pool."""
    return fresh() or await run_in_threadpool(current)


def current() -> Served:
    """The published board as this process last loaded it, checked against the data at most once per
    CHECK_EVERY_S (and at once after a commit in this process); the check reads on a connection of its
    own (see read_signature)."""
    with _lock:
        board = _state["board"]
        if board is not None and time.monotonic() - _state["checked_at"] < CHECK_EVERY_S:
            return Served(board, _state["hidden"])
        invalidations, checked_at = _state["invalidations"], time.monotonic()
    board, hidden = _refresh(board)
    with _lock:
        current_board = _state["board"]
        if current_board is None or current_board.built_at < board.built_at:
            _state["board"] = board
        if _state["invalidations"] == invalidations:  # a commit during the read may not be in it
            _state["checked_at"] = checked_at
        _state["hidden"] = hidden
    return Served(board, hidden)


def run_builder(stop: threading.Event | None = None, every_s: float = 1.0) -> None:
    """`evalboard board-builder`: rebuild and publish whenever the data changed (the only builder when
    BOARD_BUILDER=external, so API processes spend their CPU on requests only)."""
    stop = stop or threading.Event()
    log.info("board builder started")
    while not stop.is_set():
        try:
            signature, _ = read_signature()
            meta = published()
            if meta is None or meta["signature"] != signature:
                try_build(signature, meta)
        except Exception:  # the database or Redis away for a moment: try again on the next tick
            log.exception("board build failed")
        stop.wait(every_s)


def warm() -> None:
    """Load (or build) the board at API start, in the background, so the first viewer does not wait."""
    def load() -> None:
        try:
            current()
        except Exception as exc:  # no database yet: the first request builds it instead
            log.info("board not pre-loaded: %s", exc)
    _state["warming"] = threading.Thread(target=load, daemon=True, name="board-warm")
    _state["warming"].start()


def wait_for_warm(timeout_s: float = 60.0) -> None:
    """Wait for the start-up load to finish (tests and benchmarks that want a quiet start)."""
    warming = _state.get("warming")
    if warming is not None:
        warming.join(timeout_s)


def build_at_startup(app) -> None:
    """Start loading the board when the app starts (before its own lifespan), without waiting for it."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        warm()
        async with inner(a) as state:
            yield state
    app.router.lifespan_context = lifespan


def forget_local() -> None:
    """Drop this process's loaded board (tests, benchmarks: as if the process had just started)."""
    with _lock:
        _state.update(board=None, checked_at=float("-inf"), hidden=frozenset())


def metric_lines() -> list[str]:
    """The published board for Prometheus: builds so far, the last build's seconds, the board's age."""
    meta, builds = published(), get_redis().get(KEY_BUILDS)
    lines = ["# HELP evalboard_board_builds_total Leaderboard builds published (by every builder).",
             "# TYPE evalboard_board_builds_total counter", f"evalboard_board_builds_total {int(builds or 0)}"]
    if meta:
        lines += ["# HELP evalboard_board_build_seconds Seconds the published leaderboard took to build.",
                  "# TYPE evalboard_board_build_seconds gauge", f"evalboard_board_build_seconds {meta['build_s']:.3f}",
                  "# HELP evalboard_board_age_seconds Seconds since the published leaderboard was built.",
                  "# TYPE evalboard_board_age_seconds gauge",
                  f"evalboard_board_age_seconds {max(0.0, time.time() - meta['built_at']):.3f}"]
    return lines
