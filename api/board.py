"""The leaderboard as served: built once per data change, per track, then filtered, sorted and paged in memory.

A board holds every track's rows (DESIGN §5): one row per model × track × precision, from the one
submission that covers the track best (the latest complete one, else the most complete), with each
task's per-item results for the paired bootstrap. Each track's default view (ranks, intervals, rank
bands) is computed when the board is built, never per request. Aggregating 10,000 models × 30 tasks
takes seconds; filtering the result takes milliseconds. So the board is cached in-process, keyed by
a signature of the data it depends on (finished runs, and the models' visible attributes). Even that
query costs more than serving a cached page (an md5 over every model row), so it runs at most once
per SIGNATURE_TTL_S: results that workers (other processes) finish reach the board within that
second, and every commit made in this process (an admin flagging a model, a submission, a test
seeding data) invalidates the signature at once. A board that takes seconds to build (thousands of
models) keeps answering while its successor builds, and is rebuilt at most every few build times
however often results arrive. Every API worker process keeps its own copy. Per-item results are
read once per run (a finished run's items do not change) and kept between builds.
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

import numpy as np
from sqlalchemy import event, text
from sqlmodel import Session

from core.aggregate import ModelRow, TaskScore, rank
from core.compare import paired_comparison
from core.db import get_engine
from core.errors import InvalidRequestError
from core.tracks import ALL_PRECISIONS, Track, default_track, load_tracks, track_of

log = logging.getLogger("evalboard.board")

# Shown first, in this order; any other capability follows alphabetically.
CAPABILITY_ORDER = ("understanding", "generation", "cognition", "multimodal")
# Efficiency runs are measurements (tokens/s, ms, bytes), not scores: they have no random baseline
# and are kept out of the capability means, shown beside them instead, per hardware class.
EFFICIENCY = "efficiency"
CONTAMINATION = "contamination_gap"

SIGNATURE_SQL = text("""
    SELECT (SELECT count(*) FROM run WHERE status = 'finished'),
           (SELECT max(finished_at) FROM run WHERE status = 'finished'),
           (SELECT md5(coalesce(string_agg(concat_ws('|', id, name, hidden, flagged, license, params, owner_id),
                                           ',' ORDER BY id), '')) FROM model)
""")

# Every finished primary score (and contamination gap) of visible models, with its submission:
# rows are chosen per submission, so a row never mixes two submissions' precisions or suite versions.
_SCORES = """
    SELECT m.id, m.name, u.name, m.family, m.params, m.license, m.flagged, m.flag_reason,
           s.id::text, s.suite, s.suite_version, s.precision,
           coalesce((s.chat_options ->> 'apply_chat_template')::boolean, false), s.hardware_class,
           r.id::text, r.task, r.finished_at, sc.metric, sc."primary", sc.value, sc.stderr
    FROM model m JOIN "user" u ON u.id = m.owner_id
         JOIN submission s ON s.model_id = m.id
         JOIN run r ON r.submission_id = s.id
         JOIN score sc ON sc.run_id = r.id
    WHERE (sc."primary" OR sc.metric = :contamination) AND r.status = 'finished'
          AND r.capability <> :efficiency AND {which}
"""
SCORES_SQL = text(_SCORES.format(which="NOT m.hidden"))
# The rows of named models whether hidden or not: a private model compared by a viewer allowed to see it.
MODEL_SCORES_SQL = text(_SCORES.format(which="m.id = ANY(:ids)"))

# Per run, its items' values of one per-item metric, in item order, with what tells whether they are a
# gap-free set (items 0..n-1 all holding a number; a run whose last items lack it has fewer items than
# its peers and falls back on its stderr).
ITEMS_SQL = text("""
    SELECT sa.run_id::text, string_agg(sa.metrics ->> k.key, ',' ORDER BY sa.index), count(*), min(sa.index),
           max(sa.index)
    FROM sample sa JOIN unnest(CAST(:runs AS uuid[]), CAST(:keys AS text[])) AS k(run_id, key) ON sa.run_id = k.run_id
    WHERE jsonb_typeof(sa.metrics -> k.key) = 'number'
    GROUP BY sa.run_id
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
    """Every track's rows, and the ranked views of them computed so far.

    A board never changes once built; each track's default view is ranked when it is built, other
    views (raw scores, flagged models shown) on first use."""
    signature: tuple
    tracks: dict[str, list[ModelRow]]
    efficiency: list[dict]
    views: dict[tuple[str, bool, bool], list[dict]] = field(default_factory=dict)
    derived: dict = field(default_factory=dict)
    build_s: float = 0.0
    built_at: float = 0.0
    """time.monotonic() when the build finished."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rows(self, track: Track) -> list[ModelRow]:
        return self.tracks.get(track.id, [])

    def capabilities(self, track: Track) -> list[str]:
        return sorted({t.capability for t in track.tasks}, key=capability_sort_key)

    def tasks(self, track: Track) -> list[str]:
        return list(track.task_names)

    @property
    def efficiency_metrics(self) -> list[str]:
        if "efficiency_metrics" not in self.derived:
            self.derived["efficiency_metrics"] = sorted({e["metric"] for e in self.efficiency})
        return self.derived["efficiency_metrics"]

    def view(self, track: Track | None = None, *, normalised: bool = True, include_flagged: bool = False) -> list[dict]:
        """The track's rows: ranked ones best first, then the unranked (partial coverage). Ranks,
        intervals and bands are over the rows shown: flagged ones count only when they are shown."""
        track = track or default_track()
        key = (track.id, normalised, include_flagged)
        with self.lock:
            if key not in self.views:
                shown = [r for r in self.rows(track) if include_flagged or not r.flagged]
                ranked = rank(shown, normalised=normalised)
                latest = _latest_efficiency(self.efficiency)
                for row in ranked:
                    row["efficiency"] = latest.get(row["model_id"], {})
                self.views[key] = ranked
            return self.views[key]

    def comparison(self, track: Track, wanted: list[tuple[int, str | None]],
                   private: dict[str, list[ModelRow]] | None = None) -> dict:
        """Rows of `track` side by side, each against the first, with paired differences (core.compare).
        `wanted` holds (model id, precision or None for the model's best-ranked row); `private` the rows of
        models off the board that the viewer may see (their own hidden model), shown unranked. Computed
        once per board and question (private ones excepted): no request repeats another's bootstrap."""
        extra = (private or {}).get(track.id, [])
        key = ("compare", track.id, tuple(wanted))
        with self.lock:
            if not extra and key in self.derived:
                return self.derived[key]
        extra_view = [{**r, "rank": None, "rank_range": None, "band": None, "ranked": False} for r in rank(extra)]
        flagged = {r.model_id for r in self.rows(track) if r.flagged}

        def rows_of(model_id: int):
            # The view built with the board; the flagged one (ranked on first use) only for a flagged model.
            yield from extra_view
            yield from self.view(track)
            if model_id in flagged:
                yield from self.view(track, include_flagged=True)
        by_key = {r.row_id: r for r in self.rows(track) + extra}
        chosen_rows, shown = [], []
        for model_id, rest in wanted:
            candidates = [r for r in rows_of(model_id)
                          if r["model_id"] == model_id and rest in (None, r["row_id"].partition(":")[2])]
            if not candidates:
                raise InvalidRequestError(
                    f"model {model_id} has no row{f' {rest}' if rest else ''} on track {track.id}; "
                    "choose another track or precision", field="ids")
            shown.append(candidates[0])
            chosen_rows.append(by_key[candidates[0]["row_id"]])
        if len({r["row_id"] for r in shown}) != len(shown):
            raise InvalidRequestError("compare two to four different rows, e.g. ids=1,2 or ids=1:float32,1:bfloat16",
                                      field="ids")
        same_model = len({r["model_id"] for r in shown}) < len(shown)
        labels = [f"{r['model']} ({r['precision']}{', chat template' if r['chat_template'] else ''})" if same_model
                  else r["model"] for r in shown]
        result = {"track": track.id, "models": [{**r, "id": r["model_id"], "name": r["model"]} for r in shown],
                  "aggregates": _aggregate_deltas(shown, self.capabilities(track)),
                  "tasks": _task_deltas(shown, track),
                  "paired": [{"model": labels[i], "reference": labels[0], "row_id": shown[i]["row_id"],
                              "differences": paired_comparison(track, chosen_rows[i], chosen_rows[0], labels[i],
                                                               labels[0])}
                             for i in range(1, len(shown))]}
        if not extra:
            with self.lock:
                if len([k for k in self.derived if k[0] == "compare"]) >= COMPARISONS_KEPT:
                    self.derived.pop(next(k for k in self.derived if k[0] == "compare"))
                self.derived[key] = result
        return result

    def model_rows(self, model_id: int, family: str | None = None, include_flagged: bool = False) -> list[dict]:
        """A model's rows on every track, its family's default track first."""
        first = default_track(family).id if family else None
        found = []
        for track_id in sorted(self.tracks, key=lambda t: (t != first, t)):
            if any(r.model_id == model_id for r in self.tracks[track_id]):
                found += [r for r in self.view(load_tracks()[track_id], include_flagged=include_flagged)
                          if r["model_id"] == model_id]
        return found


COMPARISONS_KEPT = 512


def parse_compare_ids(ids: str) -> list[tuple[int, str | None]]:
    """`1,2` or `1:float32,1:bfloat16,1:bfloat16:chat` (row ids) → [(model id, the rest of the row id or
    None for the model's best row)]: two to four different rows."""
    wanted = []
    for token in (t.strip() for t in ids.split(",") if t.strip()):
        model_id, _, rest = token.partition(":")
        precision, _, chat = rest.partition(":")
        if not model_id.isdigit() or len(model_id) > 12 or (rest and precision not in ALL_PRECISIONS) \
                or chat not in ("", "chat"):
            raise InvalidRequestError("ids must be model ids, or row ids id:precision (id:precision:chat where "
                                      f"the chat template was used) with a precision among "
                                      f"{', '.join(ALL_PRECISIONS)}, separated by commas, e.g. ids=1,2", field="ids")
        wanted.append((int(model_id), rest or None))
    if not 2 <= len(wanted) <= 4 or len(set(wanted)) != len(wanted):
        raise InvalidRequestError("compare two to four different models, e.g. ids=1,2", field="ids")
    return wanted


def _aggregate_deltas(rows: list[dict], capabilities: list[str]) -> list[dict]:
    def value(row: dict, key: str | None) -> float | None:
        return row["overall"] if key is None else row["capabilities"].get(key)
    summary = []
    for key in [None, *capabilities]:
        ref = value(rows[0], key)
        summary.append({"aggregate": key or "overall",
                        "models": [{"value": value(r, key), "delta": None if ref is None or value(r, key) is None
                                    else value(r, key) - ref} for r in rows]})
    return summary


def _task_deltas(rows: list[dict], track: Track) -> list[dict]:
    out = []
    for spec in sorted(track.tasks, key=lambda t: capability_sort_key(t.capability)):
        ref = rows[0]["tasks"].get(spec.name)
        cells = []
        for row in rows:
            task = row["tasks"].get(spec.name)
            value = task["normalised"] if task else None
            cells.append({"raw": task["raw"] if task else None, "stderr": task["stderr"] if task else None,
                          "normalised": value,
                          "delta": None if value is None or ref is None else value - ref["normalised"]})
        out.append({"task": spec.name, "capability": spec.capability, "models": cells})
    return out


def _latest_efficiency(entries: list[dict]) -> dict[int, dict[str, float]]:
    by_model: dict[int, dict[str, tuple[datetime, float]]] = {}
    for e in entries:
        current = by_model.setdefault(e["model_id"], {}).get(e["metric"])
        if current is None or e["finished_at"] > current[0]:
            by_model[e["model_id"]][e["metric"]] = (e["finished_at"], e["value"])
    return {m: {metric: v for metric, (_, v) in metrics.items()} for m, metrics in by_model.items()}


@dataclass
class _Submission:
    """One submission's finished scores on its track, as read from SCORES_SQL."""
    model: tuple
    suite: str
    precision: str
    hardware_class: str
    scores: dict[str, tuple] = field(default_factory=dict)
    """task → (run id, finished_at, value, stderr)"""
    contamination: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    def latest(self) -> datetime:
        return max(at for _, at, _, _ in self.scores.values())


def _choose(submissions: list[_Submission], track: Track) -> _Submission:
    """The submission a row shows: the latest one covering every required task, else the most complete
    one (latest first among equals). Scores of two submissions are never merged."""
    def key(s: _Submission) -> tuple:
        covered = sum(1 for t in track.required if t in s.scores)
        return covered, s.latest()
    return max(submissions, key=key)


# run id → (finished_at, per-item values or None): a finished run's items never change; a re-run
# finishes again with a new finished_at and is read afresh.
_items_cache: dict = {}
_items_lock = threading.Lock()
ITEMS_BATCH = 500_000


def _load_items(connection, wanted: dict, *, prune: bool = True) -> dict:
    """Per-item values of these runs ({run id: (finished_at, key)}), from the cache or the database;
    `prune`: these are all the board's runs, and the cache drops the others."""
    with _items_lock:
        missing = {run: v for run, v in wanted.items() if _items_cache.get(run, (None,))[0] != v[0]}
    fetched = {}
    runs = list(missing)
    # Large batches: each query scans the sample table once (measured at 6 million samples: 12 s in one
    # query, 50 s in batches of 20,000 runs). Values travel as one string per run, parsed by numpy.
    for start in range(0, len(runs), ITEMS_BATCH):
        batch = runs[start:start + ITEMS_BATCH]
        for run_id, values, count, first, last in connection.execute(
                ITEMS_SQL, {"runs": batch, "keys": [missing[r][1] for r in batch]}).fetchall():
            if first == 0 and last == count - 1:
                fetched[run_id] = np.array(values.split(","), dtype=np.float32)
    with _items_lock:
        for run, (finished_at, _) in missing.items():
            _items_cache[run] = (finished_at, fetched.get(run))
        for run in set(_items_cache) - set(wanted) if prune else ():  # runs no longer on the board
            del _items_cache[run]
        return {run: _items_cache[run][1] for run in wanted}


def _load_rows(connection, sql, bind: dict, *, whole_board: bool = True) -> dict[str, list[ModelRow]]:
    """Rows by track, from every submission SCORES_SQL-like `sql` returns."""
    grouped: dict[tuple[str, int, str], dict] = {}
    track_by_suite: dict = {}
    for (model_id, name, owner, family, params, license, flagged, flag_reason, submission_id, suite, version,
         precision, chat, hardware, run_id, task, finished_at, metric, primary, value, stderr) in connection.execute(
            sql, {"efficiency": EFFICIENCY, "contamination": CONTAMINATION, **bind}).fetchall():
        if (suite, version) not in track_by_suite:
            track_by_suite[(suite, version)] = track_of(suite, version)
        track = track_by_suite[(suite, version)]
        # Scores outside any track (an old suite version, a task the suite no longer has, a family the
        # track is not for, a precision its policy leaves out) are on no board.
        if track is None or track.task(task) is None or family != track.family or precision not in track.precisions:
            continue
        by_submission = grouped.setdefault((track.id, model_id, precision, chat), {})
        entry = by_submission.get(submission_id)
        if entry is None:
            entry = by_submission[submission_id] = _Submission(
                (model_id, name, owner, family, params, license, flagged, flag_reason), suite, precision, hardware)
        if primary:
            entry.scores[task] = (run_id, finished_at, value, stderr)
        elif task in track.contamination_tasks:
            entry.contamination[task] = (value, stderr)
    tracks = load_tracks()
    chosen = {key: _choose(list(subs.values()), tracks[key[0]]) for key, subs in grouped.items()}
    wanted = {}
    for (track_id, _, _, _), entry in chosen.items():
        track = tracks[track_id]
        for task, (run_id, finished_at, _, _) in entry.scores.items():
            wanted[run_id] = (finished_at, track.item_metric(track.task(task)))
    items = _load_items(connection, wanted, prune=whole_board)
    rows: dict[str, list[ModelRow]] = {t: [] for t in tracks}
    for (track_id, _, precision, chat), entry in chosen.items():
        track = tracks[track_id]
        model_id, name, owner, family, params, license, flagged, flag_reason = entry.model
        row = ModelRow(model_id, name, owner, family, params, precision, entry.hardware_class, license, flagged,
                       flag_reason, track=track.id, required=track.required,
                       weights=dict(track.capability_weights), chat_template=chat)
        for task, (run_id, _, value, stderr) in entry.scores.items():
            spec = track.task(task)
            row.tasks[task] = TaskScore(task, spec.capability, value, stderr, spec.random_baseline, items.get(run_id))
        gaps = [entry.contamination[t] for t in track.contamination_tasks if t in entry.contamination]
        if gaps:  # the mean gap of the track's contamination tasks, its stderr as of a mean of independents
            errors = [e for _, e in gaps if e is not None]
            row.contamination = (sum(g for g, _ in gaps) / len(gaps),
                                 (sum(e * e for e in errors) ** 0.5 / len(gaps)) if len(errors) == len(gaps) else None)
        rows[track_id].append(row)
    return rows


def private_rows(session: Session, model_ids: list[int]) -> dict[str, list[ModelRow]]:
    """These models' rows by track, hidden ones included (never cached, never on the board)."""
    return _load_rows(session.connection(), MODEL_SCORES_SQL, {"ids": model_ids}, whole_board=False)


def load_board(session: Session) -> Board:
    connection = session.connection()
    rows = _load_rows(connection, SCORES_SQL, {})
    # Each figure with its dispersion and the hardware profile it was measured on (DESIGN §5).
    efficiency = [{"model_id": m, "model": name, "hardware_class": hw, "precision": p, "metric": metric, "value": v,
                   "unit": unit, "higher_is_better": hib, "finished_at": at, "stderr": stderr, "n": n,
                   "hardware_profile_id": int(profile) if profile and profile.isdigit() else None}
                  for m, name, hw, p, metric, v, unit, hib, at, stderr, n, profile
                  in connection.execute(EFFICIENCY_SQL, {"efficiency": EFFICIENCY})]
    return Board(signature=(), tracks=rows, efficiency=efficiency)


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
    for track in load_tracks().values():  # rank every track's default view here, not in a request
        board.view(track)
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

BASE_COLUMNS = ["rank", "rank_range", "band", "row_id", "model_id", "model", "owner", "family", "params",
                "precision", "chat_template", "hardware_class", "license", "flagged", "track", "coverage",
                "missing_tasks", "overall", "overall_low", "overall_high", "interval_method"]
# Only on tracks that report a contamination gap (a fresh draw of a bundled set), in points.
CONTAMINATION_COLUMNS = ["contamination_gap", "contamination_gap_stderr"]


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


def columns_of(board: Board, track: Track) -> list[str]:
    key = ("columns", track.id)
    if key not in board.derived:
        columns = list(BASE_COLUMNS)
        if track.contamination_tasks:
            columns += CONTAMINATION_COLUMNS
        for c in board.capabilities(track):
            columns += [c, f"{c}_low", f"{c}_high"]
        columns += [f"task:{t}" for t in board.tasks(track)]
        columns += [f"eff:{m}" for m in board.efficiency_metrics]
        board.derived[key] = columns
    return board.derived[key]


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
        elif column == "overall" or column in row["capabilities"] or column.startswith("task:") \
                or column in CONTAMINATION_COLUMNS:
            record[column] = _points(column_value(row, column, normalised))
        elif column == "missing_tasks":
            record[column] = "; ".join(row["missing_tasks"])
        elif column.startswith("eff:"):
            record[column] = column_value(row, column, normalised)
        else:
            record[column] = column_value(row, column, normalised)
    return record
