"""A board as every API process serves it: each ranked row's JSON made once, beside the few columns that
filters and the common sorts read, so a page costs a mask over arrays and a join of ready bytes.

`compile_board` turns a built `Board` (api/board.py) into a `ServedBoard`: per track, one `ServedView`
per (normalised, flagged shown) view, the facets and counts the other board endpoints answer with, and
the efficiency points. A ServedBoard is what api/board_snapshot.py publishes to Redis and every API
process loads: it holds bytes, strings and numpy arrays only, so loading it costs milliseconds where
the rows as dicts took seconds. The per-item results that /compare's paired tests need are published
beside it, per row, and read only for the rows compared.
"""
import json
from dataclasses import dataclass

import numpy as np

from api.board import Board, capability_sort_key
from api.board_view import Filters, column_value, columns_for, fast_json, parse_search
from core.tracks import default_track, load_tracks

# The fields filters and `q` search read, kept per view as lists of strings ("" for none).
TEXT_FIELDS = ("model", "owner", "family", "precision", "hardware_class", "license")


def _floats(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


class Blob:
    """Many byte strings kept as one, with their offsets: a published board loads as a few large objects
    instead of tens of thousands of small ones (what loading costs, and how long it holds the GIL)."""

    def __init__(self, parts: list[bytes]):
        self.data = b"".join(parts)
        self.offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=self.offsets[1:])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> bytes:
        return self.data[self.offsets[index]:self.offsets[index + 1]]


class TrackRows:
    """What a track's row is in every view alike, once per row id: its per-task cells (raw, normalised,
    stderr, capability) as JSON, and the fields filters read. Views refer to rows by their index here."""

    def __init__(self):
        self._cells: list[bytes] = []
        self.at: dict[str, int] = {}
        self.model_ids_list: list[int] = []
        self.text: dict[str, list[str]] = {key: [] for key in TEXT_FIELDS}
        self.params_list: list = []

    def index(self, row: dict) -> int:
        if row["row_id"] not in self.at:
            self.at[row["row_id"]] = len(self._cells)
            self._cells.append(fast_json(row["tasks"]))
            self.model_ids_list.append(row["model_id"])
            for key in TEXT_FIELDS:
                self.text[key].append(row[key] or "")
            self.params_list.append(row["params"])
        return self.at[row["row_id"]]

    def finish(self) -> "TrackRows":
        self.cells = Blob(self._cells)
        self.model_ids = np.array(self.model_ids_list, dtype=np.int64)
        self.params = _floats(self.params_list)
        del self._cells, self.model_ids_list, self.params_list
        self.at = {}  # needed only while the views are made
        return self


class ServedView:
    """One ranked view of a track, best first: rows as JSON bytes, and what filters and sorts need."""

    def __init__(self, rows: list[dict], capabilities: list[str], normalised: bool, track_rows: TrackRows):
        self.normalised = normalised
        # A row's JSON is its head (every field but `tasks`, without the closing brace) and its task cells,
        # which are the same in every view of the track and kept once, in `track_rows` (most of a row's bytes).
        self.heads = Blob([fast_json({k: v for k, v in r.items() if k != "tasks"})[:-1] for r in rows])
        self.track_rows = track_rows
        self.rows_at = np.array([track_rows.index(r) for r in rows], dtype=np.int64)
        self.model_ids = np.array([r["model_id"] for r in rows], dtype=np.int64)
        self.ranked = np.array([r["ranked"] for r in rows], dtype=bool)
        # The sorts a board page offers (rank, overall, capabilities, size); any other column decodes the rows.
        self.numbers = {column: _floats(column_value(r, column, normalised) for r in rows)
                        for column in ("rank", "overall", "params", *capabilities)}
        self._sort_keys: dict[str, list] = {}
        self._text: dict | None = None
        self._lowered: dict | None = None

    def __len__(self) -> int:
        return len(self.heads)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_sort_keys": {}, "_text": None, "_lowered": None}

    @property
    def text(self) -> dict[str, list[str]]:
        """The filtered fields in this view's order (made on first use in each process)."""
        if self._text is None:
            at = self.rows_at.tolist()
            self._text = {key: [values[i] for i in at] for key, values in self.track_rows.text.items()}
        return self._text

    @property
    def lowered(self) -> dict[str, list[str]]:
        if self._lowered is None:
            self._lowered = {key: [v.lower() for v in values] for key, values in self.text.items()}
        return self._lowered

    @property
    def params(self) -> np.ndarray:
        return self.track_rows.params[self.rows_at]

    def row_json(self, position: int) -> bytes:
        return b"".join((self.heads[position], b',"tasks":', self.track_rows.cells[self.rows_at[position]], b"}"))

    def row(self, position: int) -> dict:
        return json.loads(self.row_json(position))

    def _sort_key(self, column: str) -> np.ndarray | list:
        """A rare sort column's values, one per row: decoded once and kept alone (as floats where numeric).
        Keeping every row decoded instead cost hundreds of MB per view at 10,000 models, for a 100-byte
        request per view (an allow-listed column set bounds what this keeps)."""
        kept = self.__dict__.setdefault("_sort_keys", {})
        if column not in self.numbers and column not in kept:
            values = [column_value(self.row(p), column, self.normalised) for p in range(len(self))]
            if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
                self.numbers[column] = _floats(values)
            else:
                kept[column] = values
        return self.numbers[column] if column in self.numbers else kept[column]

    def select(self, filters: Filters, hidden: frozenset[int] = frozenset()) -> np.ndarray:
        """Positions of the rows that pass the filters (and whose model is not hidden since the build)."""
        keep = np.ones(len(self), dtype=bool)
        if hidden:
            keep &= ~np.isin(self.model_ids, np.fromiter(hidden, dtype=np.int64, count=len(hidden)))
        for key, allowed in (("family", filters.family), ("precision", filters.precision),
                             ("hardware_class", filters.hardware_class), ("license", filters.license)):
            if allowed:
                wanted = set(allowed)
                keep &= np.fromiter((v in wanted for v in self.text[key]), dtype=bool, count=len(self))
        if filters.params_min is not None:
            keep &= self.params >= filters.params_min  # NaN (no count) compares False: filtered out, as before
        if filters.params_max is not None:
            keep &= self.params <= filters.params_max
        for key, needle in parse_search(filters.q or ""):
            keep &= np.fromiter((needle in v for v in self.lowered[key]), dtype=bool, count=len(self))
        return np.flatnonzero(keep)

    def order(self, positions: np.ndarray, sort: str | None) -> np.ndarray:
        """`sort=column` ascending, `-column` descending, rows without the value last; equal values keep
        the board's order (as a stable sort does)."""
        if not sort or sort == "rank":
            return positions
        descending, column = sort.startswith("-"), sort.lstrip("-")
        column_values = self._sort_key(column)
        if isinstance(column_values, np.ndarray):
            values = column_values[positions]
            present = ~np.isnan(values)
            shown, keys = positions[present], values[present]
            return np.concatenate([shown[np.argsort(-keys if descending else keys, kind="stable")],
                                   positions[~present]])
        have = [p for p in positions.tolist() if column_values[p] is not None]
        lack = [p for p in positions.tolist() if column_values[p] is None]
        have.sort(key=column_values.__getitem__, reverse=descending)
        return np.array(have + lack, dtype=np.int64)

    def ranked_count(self, positions: np.ndarray) -> int:
        return int(self.ranked[positions].sum())

    def page_json(self, head: dict, positions: np.ndarray) -> bytes:
        """`head` and the rows at `positions`, as one JSON object whose last member is `rows`."""
        start = fast_json(head)[:-1]
        return b"".join((start, b',"rows":[' if len(head) else b'"rows":[',
                         b",".join(self.row_json(p) for p in positions.tolist()), b"]}"))


@dataclass
class ServedTrack:
    id: str
    capabilities: list[str]
    tasks: list[str]
    columns: list[str]
    views: dict[tuple[bool, bool], ServedView]
    """(normalised, flagged shown) → view; a track with no flagged row shares the view for both."""
    facets: dict
    ranked: int
    unranked: int
    rows: int
    flagged_models: frozenset[int]

    def view(self, normalised: bool = True, include_flagged: bool = False) -> ServedView:
        return self.views[(normalised, include_flagged)]

    def shown(self, hidden: frozenset[int] = frozenset()) -> dict:
        """The facets and counts without the models hidden since the build: until the rebuild, a hidden
        model's licence, size or count would tell the public what was hidden."""
        every, default = self.view(True, True), self.view()
        ids = np.fromiter(hidden, dtype=np.int64, count=len(hidden))
        keep, shown = ~np.isin(every.model_ids, ids), ~np.isin(default.model_ids, ids)
        if keep.all():
            return {"facets": self.facets, "total": len(default), "ranked": self.ranked,
                    "unranked": self.unranked, "rows": self.rows}

        def values(key: str) -> list[str]:
            return sorted({v for v, kept in zip(every.text[key], keep.tolist()) if kept and v})
        params = default.params[shown]
        params = params[~np.isnan(params)]
        flagged = np.isin(every.model_ids[keep], np.fromiter(self.flagged_models, dtype=np.int64,
                                                              count=len(self.flagged_models)))
        ranked = int(default.ranked[shown].sum())
        return {"facets": {"families": values("family"), "precisions": values("precision"),
                           "hardware_classes": values("hardware_class"), "licenses": values("license"),
                           "params_min": int(params.min()) if len(params) else None,
                           "params_max": int(params.max()) if len(params) else None,
                           "flagged": int(flagged.sum())},
                "total": int(shown.sum()), "ranked": ranked, "unranked": int(shown.sum()) - ranked,
                "rows": int(keep.sum())}


@dataclass
class ServedBoard:
    version: str
    """Changes with every publication: part of every ETag the board endpoints send."""
    built_at: float
    """Wall-clock seconds (time.time()) when its build finished."""
    tracks: dict[str, ServedTrack]
    efficiency_metrics: list[str]
    efficiency_points: list[dict]

    def track(self, track_id: str) -> ServedTrack | None:
        return self.tracks.get(track_id)

    def model_rows(self, model_id: int, family: str | None = None, include_flagged: bool = False) -> list[dict]:
        """A model's rows on every track, its family's default track first (decoded from their JSON)."""
        first = default_track(family).id if family else None
        found = []
        for track_id in sorted(self.tracks, key=lambda t: (t != first, t)):
            view = self.tracks[track_id].view(True, include_flagged)
            found += [view.row(p) for p in np.flatnonzero(view.model_ids == model_id).tolist()]
        return found


def _facets(board: Board, track, view: list[dict]) -> dict:
    unranked_rows = board.rows(track)

    def values(key: str) -> list[str]:
        return sorted({getattr(r, key) for r in unranked_rows if getattr(r, key)})
    params = [r["params"] for r in view if r["params"] is not None]
    return {"families": values("family"), "precisions": values("precision"),
            "hardware_classes": values("hardware_class"), "licenses": values("license"),
            "params_min": min(params, default=None), "params_max": max(params, default=None),
            "flagged": sum(1 for r in unranked_rows if r.flagged)}


def _efficiency_points(board: Board) -> list[dict]:
    """One point per (model, hardware class, metric), beside the model's overall on its family's default
    track (its row at the measured precision where there is one); flagged models' points left out."""
    flagged = {r.model_id for rows in board.tracks.values() for r in rows if r.flagged}
    overall: dict[tuple[int, str | None], float | None] = {}
    for family in sorted({t.family for t in load_tracks().values()}):
        for row in board.view(default_track(family)):
            overall.setdefault((row["model_id"], row["precision"]), row["overall"])
            overall.setdefault((row["model_id"], None), row["overall"])
    return [{"model_id": e["model_id"], "model": e["model"],
             "overall": overall.get((e["model_id"], e["precision"]), overall.get((e["model_id"], None))),
             "hardware_class": e["hardware_class"], "precision": e["precision"], "metric": e["metric"],
             "value": e["value"], "stderr": e["stderr"], "n": e["n"], "unit": e["unit"],
             "higher_is_better": e["higher_is_better"], "hardware_profile_id": e["hardware_profile_id"]}
            for e in board.efficiency if e["model_id"] not in flagged]


def compile_board(board: Board, version: str, built_at: float) -> ServedBoard:
    """Every track's four views ranked and encoded (flagged views only where a row is flagged)."""
    tracks = {}
    for track in load_tracks().values():
        capabilities = sorted({t.capability for t in track.tasks}, key=capability_sort_key)
        flagged_models = frozenset(r.model_id for r in board.rows(track) if r.flagged)
        views, track_rows = {}, TrackRows()
        for normalised in (True, False):
            plain = ServedView(board.view(track, normalised=normalised), capabilities, normalised, track_rows)
            views[(normalised, False)] = plain
            views[(normalised, True)] = ServedView(board.view(track, normalised=normalised, include_flagged=True),
                                                   capabilities, normalised, track_rows) if flagged_models else plain
        track_rows.finish()
        default = board.view(track)
        tracks[track.id] = ServedTrack(
            id=track.id, capabilities=capabilities, tasks=list(track.task_names),
            columns=columns_for(track, capabilities, list(track.task_names), board.efficiency_metrics),
            views=views, facets=_facets(board, track, default), ranked=sum(1 for r in default if r["ranked"]),
            unranked=sum(1 for r in default if not r["ranked"]), rows=len(board.rows(track)),
            flagged_models=flagged_models)
    return ServedBoard(version=version, built_at=built_at, tracks=tracks, efficiency_metrics=board.efficiency_metrics,
                       efficiency_points=_efficiency_points(board))
