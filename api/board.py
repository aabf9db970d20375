"""The leaderboard built from the database: per track, one row per model × precision × chat-template use,
ranked with intervals and rank bands; and the comparison of rows side by side.

A board holds every track's rows (DESIGN §5): one row per model × track × precision, from the one
submission that covers the track best (the latest complete one, else the most complete), with each
task's per-item results for the paired bootstrap. Building one for 10,000 models × 30 tasks takes
seconds, so it is built once per data change by one process and shared (api/board_snapshot.py);
api/served_board.py turns it into what requests read. Per-item results are read once per run (a
finished run's items do not change) and kept between builds.
"""
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import text
from sqlmodel import Session

from core.aggregate import ModelRow, TaskScore, rank, rank_views
from core.compare import paired_comparison
from core.errors import InvalidRequestError
from core.tracks import ALL_PRECISIONS, Track, default_track, load_tracks, track_of

# Shown first, in this order; any other capability follows alphabetically.
CAPABILITY_ORDER = ("understanding", "generation", "cognition", "multimodal")
# Efficiency runs are measurements (tokens/s, ms, bytes), not scores: they have no random baseline
# and are kept out of the capability means, shown beside them instead, per hardware class.
EFFICIENCY = "efficiency"
CONTAMINATION = "contamination_gap"

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
    """Every track's rows, and the ranked views of them computed so far (a track's four views together,
    on first use). A board never changes once built."""
    tracks: dict[str, list[ModelRow]]
    efficiency: list[dict]
    views: dict[tuple[str, bool, bool], list[dict]] = field(default_factory=dict)
    derived: dict = field(default_factory=dict)
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
        intervals and bands are over the rows shown: flagged ones count only when they are shown. The
        four views of a track are ranked together, on first use (core.aggregate.rank_views)."""
        track = track or default_track()
        with self.lock:
            if (track.id, normalised, include_flagged) not in self.views:
                latest = _latest_efficiency(self.efficiency)
                for (norm, flagged), ranked in rank_views(self.rows(track)).items():
                    for row in ranked:
                        row["efficiency"] = latest.get(row["model_id"], {})
                    self.views[(track.id, norm, flagged)] = ranked
            return self.views[(track.id, normalised, include_flagged)]

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


def comparison(track: Track, wanted: list[tuple[int, str | None]], capabilities: list[str],
               candidates_of: Callable[[int], Iterable[dict]],
               model_rows_of: Callable[[list[str]], dict[str, ModelRow]],
               private: list[ModelRow] | None = None) -> dict:
    """Rows of `track` side by side, each against the first, with paired differences (core.compare).

    `wanted` holds (model id, precision or None for the model's best-ranked row); `candidates_of` gives a
    model's rows as the board shows them (ranked view, then the flagged one for a flagged model);
    `model_rows_of` the rows with their per-item results, by row id; `private` the rows of models off
    the board that the viewer may see (their own hidden model), shown unranked."""
    private = private or []
    extra_view = [{**r, "rank": None, "rank_range": None, "band": None, "ranked": False} for r in rank(private)]
    shown = []
    for model_id, rest in wanted:
        candidates = [r for source in (extra_view, candidates_of(model_id)) for r in source
                      if r["model_id"] == model_id and rest in (None, r["row_id"].partition(":")[2])]
        if not candidates:
            raise InvalidRequestError(
                f"model {model_id} has no row{f' {rest}' if rest else ''} on track {track.id}; "
                "choose another track or precision", field="ids")
        shown.append(candidates[0])
    if len({r["row_id"] for r in shown}) != len(shown):
        raise InvalidRequestError("compare two to four different rows, e.g. ids=1,2 or ids=1:float32,1:bfloat16",
                                  field="ids")
    by_key = {r.row_id: r for r in private}
    by_key.update(model_rows_of([r["row_id"] for r in shown if r["row_id"] not in by_key]))
    chosen_rows = [by_key[r["row_id"]] for r in shown]
    same_model = len({r["model_id"] for r in shown}) < len(shown)
    labels = [f"{r['model']} ({r['precision']}{', chat template' if r['chat_template'] else ''})" if same_model
              else r["model"] for r in shown]
    return {"track": track.id, "models": [{**r, "id": r["model_id"], "name": r["model"]} for r in shown],
            "aggregates": _aggregate_deltas(shown, capabilities),
            "tasks": _task_deltas(shown, track),
            "paired": [{"model": labels[i], "reference": labels[0], "row_id": shown[i]["row_id"],
                        "differences": paired_comparison(track, chosen_rows[i], chosen_rows[0], labels[i],
                                                         labels[0])}
                       for i in range(1, len(shown))]}


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
    id: str = ""
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
                (model_id, name, owner, family, params, license, flagged, flag_reason), suite, precision, hardware,
                submission_id)
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
                       weights=dict(track.capability_weights), chat_template=chat, submission_id=entry.id)
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
    return Board(tracks=rows, efficiency=efficiency)
