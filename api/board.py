"""The leaderboard as served: aggregated once per data change, then filtered, sorted and paged in memory.

Aggregating 10,000 models × 30 tasks with bootstrap intervals takes a second or two; filtering the
result takes milliseconds. So the aggregate is cached in-process, keyed by a signature of the data
it depends on (finished runs, and the models' visible attributes). Even that query costs more than
serving a cached page (an md5 over every model row), so it runs at most once per SIGNATURE_TTL_S:
results that workers (other processes) finish reach the board within that second, and every commit
made in this process (an admin flagging a model, a submission, a test seeding data) invalidates the
signature at once. A board that takes seconds to build (thousands of models) keeps answering
while its successor builds, and is rebuilt at most every few build times however often results
arrive. Every API worker process keeps its own copy.
"""
import json
import logging
import shlex
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from sqlalchemy import event, text
from sqlmodel import Session

from core.aggregate import ModelRow, TaskScore, rank
from core.catalog import load_suites
from core.db import get_engine
from core.errors import InvalidRequestError

log = logging.getLogger("evalboard.board")

# Shown first, in this order; any other capability follows alphabetically.
CAPABILITY_ORDER = ("understanding", "generation", "cognition", "multimodal")
# Efficiency runs are measurements (tokens/s, ms, bytes), not scores: they have no random baseline
# and are kept out of the capability means, shown beside them instead.
EFFICIENCY = "efficiency"

SIGNATURE_SQL = text("""
    SELECT (SELECT count(*) FROM run WHERE status = 'finished'),
           (SELECT max(finished_at) FROM run WHERE status = 'finished'),
           (SELECT md5(coalesce(string_agg(concat_ws('|', id, name, hidden, flagged, license, params, owner_id),
                                           ',' ORDER BY id), '')) FROM model)
""")

# Each (model, task)'s latest finished primary score; hidden models never reach the board.
SCORES_SQL = text("""
    SELECT DISTINCT ON (m.id, r.task)
           m.id, m.name, u.name, m.family, m.params, m.license, m.flagged, m.flag_reason,
           s.suite, s.precision, s.hardware_class, r.task, r.capability, r.finished_at, sc.value, sc.stderr
    FROM model m JOIN "user" u ON u.id = m.owner_id
         JOIN submission s ON s.model_id = m.id
         JOIN run r ON r.submission_id = s.id
         JOIN score sc ON sc.run_id = r.id
    WHERE sc."primary" AND r.status = 'finished' AND NOT m.hidden AND r.capability <> :efficiency
    ORDER BY m.id, r.task, r.finished_at DESC
""")

# Each (model, hardware class, metric)'s latest efficiency measurement.
EFFICIENCY_SQL = text("""
    SELECT DISTINCT ON (m.id, s.hardware_class, sc.metric)
           m.id, m.name, s.hardware_class, s.precision, sc.metric, sc.value, sc.unit, sc.higher_is_better,
           r.finished_at, sc.stderr, sc.n, r.provenance ->> 'hardware_profile_id'
    FROM model m JOIN submission s ON s.model_id = m.id
         JOIN run r ON r.submission_id = s.id
         JOIN score sc ON sc.run_id = r.id
    WHERE r.status = 'finished' AND NOT m.hidden AND r.capability = :efficiency
    ORDER BY m.id, s.hardware_class, sc.metric, r.finished_at DESC
""")


def capability_sort_key(capability: str) -> tuple:
    return (CAPABILITY_ORDER.index(capability) if capability in CAPABILITY_ORDER else len(CAPABILITY_ORDER),
            capability)


@dataclass
class Board:
    """Every visible model's scores, and the ranked views of them computed so far.

    A board never changes once built, so what is derived from all its rows (capabilities, tasks,
    columns) is computed once: with 10,000 models × 30 tasks each is a pass over 300,000 scores,
    and a request used to make four of them."""
    signature: tuple
    rows: list[ModelRow]
    efficiency: list[dict]
    views: dict[tuple[bool, bool], list[dict]] = field(default_factory=dict)
    derived: dict = field(default_factory=dict)
    build_s: float = 0.0
    built_at: float = 0.0
    """time.monotonic() when the build finished."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def capabilities(self) -> list[str]:
        return sorted({s.capability for r in self.rows for s in r.tasks.values()}, key=capability_sort_key)

    @cached_property
    def tasks(self) -> list[str]:
        return sorted({t for r in self.rows for t in r.tasks})

    @cached_property
    def efficiency_metrics(self) -> list[str]:
        return sorted({e["metric"] for e in self.efficiency})

    def view(self, *, normalised: bool = True, include_flagged: bool = False) -> list[dict]:
        """Ranked rows. Ranks, intervals and bands are over the models shown: flagged ones count only
        when they are shown. Computed on first use per data change, then reused."""
        key = (normalised, include_flagged)
        with self.lock:
            if key not in self.views:
                shown = [r for r in self.rows if include_flagged or not r.flagged]
                ranked = rank(shown, normalised=normalised)
                latest = _latest_efficiency(self.efficiency)
                for row in ranked:
                    row["efficiency"] = latest.get(row["model_id"], {})
                self.views[key] = ranked
            return self.views[key]


def _latest_efficiency(entries: list[dict]) -> dict[int, dict[str, float]]:
    by_model: dict[int, dict[str, tuple[datetime, float]]] = {}
    for e in entries:
        current = by_model.setdefault(e["model_id"], {}).get(e["metric"])
        if current is None or e["finished_at"] > current[0]:
            by_model[e["model_id"]][e["metric"]] = (e["finished_at"], e["value"])
    return {m: {metric: v for metric, (_, v) in metrics.items()} for m, metrics in by_model.items()}


def load_board(session: Session) -> Board:
    baselines = {(s.name, t.name): t.random_baseline for s in load_suites().values() for t in s.tasks}
    rows: dict[int, ModelRow] = {}
    latest: dict[int, datetime] = {}
    connection = session.connection()
    for (model_id, name, owner, family, params, license, flagged, flag_reason, suite, precision, hardware,
         task, capability, finished_at, value, stderr) in connection.execute(SCORES_SQL, {"efficiency": EFFICIENCY}):
        row = rows.get(model_id)
        if row is None:
            row = rows[model_id] = ModelRow(model_id, name, owner, family, params, precision, hardware, license,
                                            flagged, flag_reason)
        row.tasks[task] = TaskScore(task, capability, value, stderr, baselines.get((suite, task), 0.0))
        # The precision and hardware shown are those of the model's most recent finished run.
        if model_id not in latest or finished_at > latest[model_id]:
            latest[model_id] = finished_at
            row.precision, row.hardware_class = precision, hardware
    # Each figure with its dispersion and the hardware profile it was measured on (DESIGN §5).
    efficiency = [{"model_id": m, "model": name, "hardware_class": hw, "precision": p, "metric": metric, "value": v,
                   "unit": unit, "higher_is_better": hib, "finished_at": at, "stderr": stderr, "n": n,
                   "hardware_profile_id": int(profile) if profile and profile.isdigit() else None}
                  for m, name, hw, p, metric, v, unit, hib, at, stderr, n, profile
                  in connection.execute(EFFICIENCY_SQL, {"efficiency": EFFICIENCY})]
    return Board(signature=(), rows=list(rows.values()), efficiency=efficiency)


# The board being served, the rebuild in flight (signature, future), if any, the last signature read
# with when it was read (time.monotonic()), and a count of invalidations.
_state: dict = {"board": None, "pending": None, "signature": None, "signature_at": float("-inf"),
                "invalidations": 0}
SIGNATURE_TTL_S = 1.0
_lock = threading.Lock()
_builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="board-build")
# A board that built in under FAST_BUILD_S is rebuilt while the request waits, so small boards are
# always fresh. A slower one (thousands of models) keeps answering from the previous board while
# the rebuild runs in the background: the page stays fast and shows new results a few seconds later.
FAST_BUILD_S = 1.0
# A slow board spends at most 1 / REBUILD_EVERY_BUILDS of the time rebuilding (see _recently_built).
REBUILD_EVERY_BUILDS = 4


def _signature(session: Session) -> tuple:
    with _lock:
        if time.monotonic() - _state["signature_at"] < SIGNATURE_TTL_S:
            return _state["signature"]
        invalidations, read_at = _state["invalidations"], time.monotonic()
    signature = tuple(session.connection().execute(SIGNATURE_SQL).one())
    with _lock:
        if _state["invalidations"] == invalidations:  # a commit during the read may not be in it
            _state["signature"], _state["signature_at"] = signature, read_at
    return signature


def invalidate_signature(*_args) -> None:
    """The next request reads the signature again (called after every commit in this process)."""
    with _lock:
        _state["signature_at"] = float("-inf")
        _state["invalidations"] += 1


# Any commit in this process may have changed what the board shows: the session is the one place
# all of the API's writes (and the tests' seeding) go through.
event.listen(Session, "after_commit", invalidate_signature)


def _build(signature: tuple) -> Board:
    started = time.perf_counter()
    with Session(get_engine()) as session:
        board = load_board(session)
    board.signature = signature
    board.view()  # rank the default view here, not in the request that first asks for it
    board.build_s = time.perf_counter() - started
    board.built_at = time.monotonic()
    return board


def _install(future: Future) -> None:
    if future.exception() is None:
        with _lock:
            current = _state["board"]
            board = future.result()
            if current is None or current.signature != board.signature:
                _state["board"] = board
            if _state["pending"] and _state["pending"][1] is future:
                _state["pending"] = None


def _rebuild(signature: tuple) -> Future:
    """The rebuild for this signature, started if none is in flight for it. Call with _lock held."""
    pending = _state["pending"]
    if pending is None or pending[0] != signature or (pending[1].done() and pending[1].exception()):
        future = _builder.submit(_build, signature)
        future.add_done_callback(_install)
        _state["pending"] = pending = (signature, future)
    return pending[1]


def current_board(session: Session) -> Board:
    """The board for the current data: rebuilt when the data changed since it was built.

    The first build is waited for, and so is a rebuild of a board that builds fast; otherwise the
    previous board answers (stale by one rebuild) while the rebuild finishes in the background.
    """
    signature = _signature(session)
    with _lock:
        board = _state["board"]
        if board is not None and board.signature == signature:
            return board
        if board is not None and _recently_built(board):
            return board
        future = _rebuild(signature)
    if board is None or board.build_s < FAST_BUILD_S:
        return future.result()
    return board


def _recently_built(board: Board) -> bool:
    """A slow board is rebuilt at most every REBUILD_EVERY_BUILDS × its build time: while workers
    finish runs every few seconds, back-to-back rebuilds would take the API's CPU from its readers."""
    if board.build_s < FAST_BUILD_S:
        return False
    return time.monotonic() - board.built_at < REBUILD_EVERY_BUILDS * board.build_s


def warm() -> None:
    """Start building the board now (at API start), so the first viewer does not wait for it."""
    try:
        with Session(get_engine()) as session:
            signature = _signature(session)
        with _lock:
            _rebuild(signature)
    except Exception as exc:  # no database yet: the first request builds it instead
        log.info("board not pre-built: %s", exc)


def build_at_startup(app) -> None:
    """Start building the board when the app starts (before its own lifespan), without waiting for it."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        warm()
        async with inner(a) as state:
            yield state
    app.router.lifespan_context = lifespan


# ---- filtering, search, sorting -------------------------------------------------------------

SEARCH_FIELDS = {"model": "model", "name": "model", "owner": "owner", "family": "family", "license": "license",
                 "precision": "precision", "hardware": "hardware_class", "hardware_class": "hardware_class"}


@dataclass
class Filters:
    family: list[str] | None = None
    params_min: int | None = None
    params_max: int | None = None
    precision: list[str] | None = None
    hardware_class: list[str] | None = None
    license: list[str] | None = None
    q: str | None = None

    @property
    def active(self) -> bool:
        return any(v is not None and v != [] and v != "" for v in (
            self.family, self.params_min, self.params_max, self.precision, self.hardware_class, self.license, self.q))

    def matcher(self):
        terms = parse_search(self.q or "")

        def keep(row: dict) -> bool:
            for key, allowed in (("family", self.family), ("precision", self.precision),
                                 ("hardware_class", self.hardware_class), ("license", self.license)):
                if allowed and (row[key] or "") not in allowed:
                    return False
            if self.params_min is not None and (row["params"] is None or row["params"] < self.params_min):
                return False
            if self.params_max is not None and (row["params"] is None or row["params"] > self.params_max):
                return False
            return all(needle in (row[key] or "").lower() for key, needle in terms)
        return keep


def parse_search(query: str) -> list[tuple[str, str]]:
    """`family:clip owner:alice gpt` → [(family, clip), (owner, alice), (model, gpt)]; all must match.

    Plain words match the model name; `field:value` matches that field; both are case-insensitive
    substring matches. Quotes group words: `owner:"big lab"`.
    """
    try:
        words = shlex.split(query)
    except ValueError:  # an unbalanced quote: take the words as they are
        words = query.split()
    terms = []
    for word in words:
        key, sep, value = word.partition(":")
        if not sep:
            terms.append(("model", word.lower()))
        elif key.lower() in SEARCH_FIELDS:
            terms.append((SEARCH_FIELDS[key.lower()], value.lower()))
        else:
            raise InvalidRequestError(f"unknown search field {key!r}; use one of: "
                                      f"{', '.join(sorted(SEARCH_FIELDS))}, or plain words for the model name",
                                      field="q")
    return terms


def column_value(row: dict, column: str, normalised: bool = True):
    """A row's value for a board column: a top-level field, a capability, `task:NAME` or `eff:METRIC`."""
    if column in row and not isinstance(row[column], dict):
        return row[column]
    if column.startswith("task:"):
        score = row["tasks"].get(column[5:])
        return None if score is None else score["normalised" if normalised else "raw"]
    if column.startswith("eff:"):
        return row["efficiency"].get(column[4:])
    return row["capabilities"].get(column)


def sort_rows(rows: list[dict], sort: str | None, normalised: bool) -> list[dict]:
    """`sort=params` ascending, `sort=-params` descending; models without the value go last."""
    if not sort or sort == "rank":
        return rows
    descending, column = sort.startswith("-"), sort.lstrip("-")
    present = [r for r in rows if column_value(r, column, normalised) is not None]
    missing = [r for r in rows if column_value(r, column, normalised) is None]
    present.sort(key=lambda r: column_value(r, column, normalised), reverse=descending)
    return present + missing


# ---- what the board shows, as flat records (the page, CSV and JSON export) -------------------

BASE_COLUMNS = ["rank", "rank_range", "band", "model_id", "model", "owner", "family", "params", "precision",
                "hardware_class", "license", "flagged", "overall", "overall_low", "overall_high"]


def _points(value: float | None) -> float | None:
    """Display units: ×100, one decimal (normalised 0 = chance, 100 = perfect)."""
    return None if value is None else round(100 * value, 1)


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def fast_json(payload: dict) -> bytes:
    """JSON as Starlette's JSONResponse writes it (no NaN, compact, UTF-8), without FastAPI's walk."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                      default=_json_default).encode()


def columns_of(board: Board) -> list[str]:
    if "columns" not in board.derived:
        columns = list(BASE_COLUMNS)
        for c in board.capabilities:
            columns += [c, f"{c}_low", f"{c}_high"]
        columns += [f"task:{t}" for t in board.tasks]
        columns += [f"eff:{m}" for m in board.efficiency_metrics]
        board.derived["columns"] = columns
    return board.derived["columns"]


def flat_record(row: dict, columns: list[str], normalised: bool) -> dict:
    """One board row in display units. Score columns are points; `eff:` columns keep their unit."""
    low_high = {"overall": row["overall_ci"], **row["capabilities_ci"]}
    record = {}
    for column in columns:
        if column == "rank_range":
            best_worst = row["rank_range"]
            record[column] = None if best_worst is None else (
                str(best_worst[0]) if best_worst[0] == best_worst[1] else f"{best_worst[0]}-{best_worst[1]}")
        elif column.endswith(("_low", "_high")) and column.rsplit("_", 1)[0] in low_high:
            name, end = column.rsplit("_", 1)
            bounds = low_high.get(name)
            record[column] = None if bounds is None else _points(bounds[0 if end == "low" else 1])
        elif column == "overall" or column in row["capabilities"] or column.startswith("task:"):
            record[column] = _points(column_value(row, column, normalised))
        elif column.startswith("eff:"):
            record[column] = column_value(row, column, normalised)
        else:
            record[column] = column_value(row, column, normalised)
    return record
