"""Published aggregation (DESIGN §5): normalise each task's primary metric against its random
baseline, average tasks into capabilities and capabilities into an overall score; put a seeded
bootstrap confidence interval on every aggregate and group models whose intervals overlap into
rank bands.

Computed here, in one place, so the board, the CSV export and every API client agree.

The bootstrap resamples items (core.paired_stats): where a task's per-item results are known, each
draw re-weights its items, the same items for every model of the track, so the draws are paired
across models; the draw's deviation from the full-sample mean is added to the task's score. Where
they are not (no samples, or a per-item metric the task does not log, as retrieval's MR), the named
fallback is parametric: the deviation is `stderr · z` with z standard normal. Capability and
overall draws are the (weighted) means of the task draws; intervals are their 2.5th and 97.5th
percentiles. Rank ranges are the 2.5th–97.5th percentiles of each model's rank across the draws, and
bands group models whose paired difference from the band's first model is not significant.

Draws are seeded per task name (and item count), not per model: a model's interval depends only on
its own results, so it does not move when other models are added.
"""
import math
import zlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from core import paired_stats

DRAWS = 1000
SEED = 20240611
LEVEL = 0.95


def mean(values) -> float:
    """statistics.mean is exact but ~30× slower; at board scale float summation is what we want."""
    values = list(values)
    return math.fsum(values) / len(values)


def normalise(raw: float, random_baseline: float) -> float:
    """(raw − random) / (1 − random): 0 is chance, 1 is perfect."""
    if random_baseline >= 1.0:
        return raw
    return (raw - random_baseline) / (1.0 - random_baseline)


def _scale(random_baseline: float) -> float:
    """d normalised / d raw: how a raw-score error carries into the normalised score."""
    return 1.0 if random_baseline >= 1.0 else 1.0 / (1.0 - random_baseline)


@dataclass
class TaskScore:
    task: str
    capability: str
    raw: float
    stderr: float | None
    random_baseline: float
    items: np.ndarray | None = None
    """per-item values of the task's per-item metric, item i at position i; None when not known"""

    @cached_property
    def normalised(self) -> float:  # read a dozen times per score while a board is built
        return normalise(self.raw, self.random_baseline)


@dataclass
class ModelRow:
    """One evaluated configuration: a model on one track at one precision (DESIGN §5)."""
    model_id: int
    model: str
    owner: str
    family: str
    params: int | None
    precision: str
    hardware_class: str
    license: str | None
    flagged: bool = False
    flag_reason: str | None = None
    tasks: dict[str, TaskScore] = field(default_factory=dict)
    track: str | None = None
    required: tuple[str, ...] = ()
    """the track's required tasks: the row is ranked only with a score for each (none: always ranked)"""
    weights: dict[str, float] = field(default_factory=dict)
    contamination: tuple[float, float | None] | None = None
    """(contamination_gap, its stderr) where the track reports one"""
    submission_id: str | None = None
    chat_template: bool = False
    """its prompts went through the model's chat template: another configuration, another row"""
    _capabilities: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def row_id(self) -> str:
        """`model:precision`, with `:chat` when the chat template was applied (what /compare takes)."""
        return f"{self.model_id}:{self.precision}" + (":chat" if self.chat_template else "")

    @property
    def row_key(self) -> str:
        """What seeds the row's parametric draws: the row itself, on its track."""
        return f"{self.track}/{self.model_id}/{self.model}/{self.row_id}"

    @property
    def missing(self) -> list[str]:
        return [t for t in self.required if t not in self.tasks]

    @property
    def complete(self) -> bool:
        return not self.missing and bool(self.tasks)

    @property
    def coverage(self) -> str | None:
        if not self.required:
            return None
        return f"{len(self.required) - len(self.missing)}/{len(self.required)} tasks"

    def capabilities(self, normalised: bool = True) -> dict[str, float]:
        # Read several times per row while a board is ranked; remembered until the row's tasks change.
        key = (normalised, len(self.tasks))
        if self._capabilities.get("key") == key:
            return dict(self._capabilities["value"])
        by_capability: dict[str, list[float]] = {}
        for score in self.tasks.values():
            by_capability.setdefault(score.capability, []).append(score.normalised if normalised else score.raw)
        value = {c: mean(v) for c, v in sorted(by_capability.items())}
        self._capabilities.update(key=key, value=value)
        return dict(value)

    def overall(self, normalised: bool = True) -> float | None:
        caps = self.capabilities(normalised)
        if not caps:
            return None
        weights = [self.weights.get(c, 1.0) for c in caps]
        return math.fsum(w * v for w, v in zip(weights, caps.values())) / math.fsum(weights)

    def interval_method(self, sizes: dict[str, int] | None = None) -> str | None:
        """How the row's intervals were drawn; `sizes` are the item counts paired on (see _paired_sizes)."""
        def paired(s: TaskScore) -> bool:
            return s.items is not None and (sizes is None or len(s.items) == sizes.get(s.task))
        fallback = sorted(t for t, s in self.tasks.items() if not paired(s))
        if not self.tasks:
            return None
        if not fallback:
            return "paired bootstrap over items"
        if len(fallback) == len(self.tasks):
            return "parametric (stderr)"
        return "paired bootstrap over items; parametric (stderr) for " + ", ".join(fallback)

    def as_dict(self, normalised: bool = True, sizes: dict[str, int] | None = None) -> dict:
        gap, gap_stderr = self.contamination or (None, None)
        return {
            "row_id": self.row_id, "submission_id": self.submission_id, "model_id": self.model_id,
            "model": self.model, "owner": self.owner,
            "family": self.family, "params": self.params, "precision": self.precision,
            "hardware_class": self.hardware_class, "chat_template": self.chat_template, "license": self.license,
            "flagged": self.flagged,
            "flag_reason": self.flag_reason, "track": self.track, "coverage": self.coverage,
            "missing_tasks": self.missing, "contamination_gap": gap, "contamination_gap_stderr": gap_stderr,
            "interval_method": self.interval_method(sizes),
            "overall": self.overall(normalised), "capabilities": self.capabilities(normalised),
            "tasks": {t: {"raw": s.raw, "stderr": s.stderr, "normalised": s.normalised, "capability": s.capability}
                      for t, s in sorted(self.tasks.items())},
        }


@dataclass
class Intervals:
    """Bootstrap intervals of one model's aggregates: (low, high) per capability and overall."""
    overall: tuple[float, float] | None
    capabilities: dict[str, tuple[float, float]]


def task_draws(task: str, draws: int = DRAWS, seed: int = SEED, row: str = "") -> np.ndarray:
    """The standard-normal draws of the parametric fallback for this task of this row: seeded by both,
    so a row's interval stands alone, and two rows' errors are independent (as two evaluations' are)."""
    # float32: the draws only feed percentiles, and half the memory traffic is half the time.
    return np.random.default_rng([seed, zlib.crc32(task.encode()), zlib.crc32(row.encode())]).standard_normal(
        draws, dtype=np.float32)


def _paired_sizes(rows: list[ModelRow]) -> dict[str, int]:
    """Per task, the item count its per-item draws pair on: the most common one. A row whose items
    differ in number was scored on other items (another dataset draw): it falls back to its stderr."""
    counts: dict[str, dict[int, int]] = {}
    for r in rows:
        for s in r.tasks.values():
            if s.items is not None and len(s.items):
                sizes = counts.setdefault(s.task, {})
                sizes[len(s.items)] = sizes.get(len(s.items), 0) + 1
    return {t: max(sizes, key=lambda n: (sizes[n], n)) for t, sizes in counts.items()}


def _bounds(draws: np.ndarray, level: float) -> np.ndarray:
    """(rows × 2) percentile bounds, as order statistics: np.partition instead of np.percentile's
    sort-and-interpolate, several times faster on a board's draws and the same to within one draw."""
    b = draws.shape[1]
    tail = (1.0 - level) / 2
    k = (int(math.floor(tail * (b - 1))), int(math.ceil((1 - tail) * (b - 1))))
    return np.partition(draws, k, axis=1)[:, k]


def _design(rows: list[ModelRow], sizes: dict[str, int], draws: int, seed: int
            ) -> dict[str, tuple[list[str], dict[str, int], np.ndarray]]:
    """Per capability: its tasks, each task's first column, and the (columns × draws) matrix turning a
    row's centred per-item values into draws: a task with per-item results takes n columns, its items'
    resampling weights, shared by every row (the pairing)."""
    capability_of: dict[str, str] = {}
    for r in rows:
        for score in r.tasks.values():
            capability_of.setdefault(score.task, score.capability)
    design = {}
    for capability in sorted(set(capability_of.values())):
        tasks = sorted(t for t, c in capability_of.items() if c == capability)
        offsets, blocks, at = {}, [], 0
        for task in tasks:
            offsets[task] = at
            if task in sizes:
                blocks.append(paired_stats.item_weights(task, sizes[task], draws, seed).T)
                at += sizes[task]
        weights = np.vstack(blocks).astype(np.float32) if blocks else np.zeros((0, draws), dtype=np.float32)
        design[capability] = (tasks, offsets, weights)
    return design


def draw_aggregates(rows: list[ModelRow], *, normalised: bool = True, draws: int = DRAWS, seed: int = SEED,
                    level: float = LEVEL, chunk: int = 4096, sizes: dict[str, int] | None = None
                    ) -> tuple[list[Intervals], np.ndarray]:
    """Every row's intervals, and the (rows × draws) matrix of its overall's draws (NaN for rows without
    scores). Per chunk of rows and capability, one matrix product, centred items · scale @ resampling
    weights, gives every row's summed paired deviations at once; the stderr fallback adds its own."""
    sizes = _paired_sizes(rows) if sizes is None else sizes
    design = _design(rows, sizes, draws, seed)
    overall = np.full((len(rows), draws), np.nan, dtype=np.float32)
    intervals: list[Intervals] = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        # One pass over the chunk's scores, sorting them by task and by method.
        paired: dict[str, list[tuple[int, TaskScore]]] = {}
        fallback: dict[str, list[tuple[int, TaskScore]]] = {}
        points: dict[str, tuple[list[int], list[float]]] = {c: ([], []) for c in design}
        for i, r in enumerate(part):
            for score in r.tasks.values():
                items = score.items
                (paired if items is not None and len(items) == sizes.get(score.task) else fallback).setdefault(
                    score.task, []).append((i, score))
                at, values = points[score.capability]
                at.append(i)
                values.append(score.normalised if normalised else score.raw)
        weighted = np.zeros((len(part), draws), dtype=np.float32)
        weight_total = np.zeros(len(part))
        bounds = {}
        for capability, (tasks, offsets, weights) in design.items():
            at, values = points[capability]
            if not at:
                continue
            point_sum, count = np.zeros(len(part)), np.zeros(len(part))
            np.add.at(point_sum, at, values)
            np.add.at(count, at, 1)
            x = np.zeros((len(part), weights.shape[0]), dtype=np.float32)
            spread = np.zeros((len(part), draws), dtype=np.float32)  # the fallback's summed deviations
            for task in tasks:
                scale = _scale(design_baseline(paired.get(task) or fallback.get(task))) if normalised else 1.0
                if task in paired:
                    entries = paired[task]
                    index = np.fromiter((i for i, _ in entries), dtype=np.intp, count=len(entries))
                    items = np.stack([score.items for _, score in entries]).astype(np.float32)
                    items -= items.mean(axis=1, keepdims=True)
                    items *= scale
                    x[index, offsets[task]:offsets[task] + sizes[task]] = items
                for i, score in fallback.get(task, ()):
                    if score.stderr:
                        spread[i] += score.stderr * scale * task_draws(task, draws, seed, part[i].row_key)
            has = count > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                cap_draws = x @ weights if weights.shape[0] else np.zeros((len(part), draws), dtype=np.float32)
                cap_draws += spread
                cap_draws += point_sum[:, None].astype(np.float32)
                cap_draws /= count[:, None].astype(np.float32)
            bounds[capability] = (_bounds(cap_draws, level), has)
            w = np.array([r.weights.get(capability, 1.0) for r in part])
            weighted[has] += (w[has, None] * cap_draws[has]).astype(np.float32)
            weight_total[has] += w[has]
        with np.errstate(invalid="ignore", divide="ignore"):
            part_overall = weighted / weight_total[:, None].astype(np.float32)
        part_bounds = _bounds(part_overall, level) if len(part) else np.zeros((0, 2))
        overall[start:start + len(part)] = part_overall
        ordered_bounds = sorted(bounds.items())
        for i in range(len(part)):
            intervals.append(Intervals(
                overall=(float(part_bounds[i, 0]), float(part_bounds[i, 1])) if weight_total[i] else None,
                capabilities={c: (float(b[i, 0]), float(b[i, 1])) for c, (b, has) in ordered_bounds if has[i]}))
    return intervals, overall


def design_baseline(entries: list[tuple[int, TaskScore]]) -> float:
    """A task's random baseline (one per task on a track: the first score's)."""
    return entries[0][1].random_baseline


def bootstrap(rows: list[ModelRow], *, normalised: bool = True, draws: int = DRAWS, seed: int = SEED,
              level: float = LEVEL, chunk: int = 1024) -> list[Intervals]:
    """Percentile intervals for every row's capabilities and overall, in the order of `rows`."""
    return draw_aggregates(rows, normalised=normalised, draws=draws, seed=seed, level=level, chunk=chunk)[0]


@dataclass(frozen=True)
class Placing:
    """Where a model stands: its rank, the ranks it could hold given the intervals, and its band."""
    rank: int
    best: int | None
    worst: int | None
    band: int | None


def rank_bands(points: list[float | None], intervals: list[tuple[float, float] | None]) -> list[Placing]:
    """Placings from independent intervals, for models already sorted best first (the method used
    before per-item draws; kept for callers holding only intervals).

    A model's rank range runs from 1 + the number of models certainly better (their low above its
    high) to the number of models not certainly worse (their high at or above its low). A band
    opens with the best model not yet placed and holds every following model whose interval
    still reaches the opener's low. Unscored models (point None) get a rank but no range and no band.
    """
    scored = [i for i, p in enumerate(points) if p is not None and intervals[i] is not None]
    lows = np.sort([intervals[i][0] for i in scored])
    highs = np.sort([intervals[i][1] for i in scored])
    n = len(scored)
    placings: list[Placing] = []
    band, opener_low = 0, None
    for position, point in enumerate(points):
        if point is None or intervals[position] is None:
            placings.append(Placing(position + 1, None, None, None))
            continue
        low, high = intervals[position]
        certainly_better = n - int(np.searchsorted(lows, high, side="right"))
        certainly_worse = int(np.searchsorted(highs, low, side="left"))
        if opener_low is None or high < opener_low:
            band, opener_low = band + 1, low
        placings.append(Placing(position + 1, certainly_better + 1, n - certainly_worse, band))
    return placings


def paired_placings(draws: np.ndarray, level: float = LEVEL) -> list[Placing]:
    """Placings from paired draws of the overall, rows already sorted best first (all scored).

    Each draw ranks every model; a model's rank range is the central `level` of its ranks over the
    draws. A band opens with the best model not yet placed and holds each following model whose
    paired difference from the opener is not significant (the opener is ahead in fewer than
    1 − (1 − level)/2 of the draws).
    """
    m, b = draws.shape
    if m == 0:
        return []
    tail = (1.0 - level) / 2
    order = np.argsort(-draws, axis=0, kind="stable")  # (m × b): which row holds each place in each draw
    ranks = np.empty_like(order, dtype=np.int32)
    ranks[order, np.arange(b)[None, :]] = np.arange(1, m + 1, dtype=np.int32)[:, None]
    ranks.sort(axis=1)
    best = ranks[:, int(math.floor(tail * (b - 1)))]
    worst = ranks[:, int(math.ceil((1 - tail) * (b - 1)))]
    placings, band, opener = [], 0, None
    for position in range(m):
        if opener is None or np.mean(draws[opener] > draws[position]) > 1 - tail:
            band, opener = band + 1, position
        placings.append(Placing(position + 1, min(int(best[position]), position + 1),
                                max(int(worst[position]), position + 1), band))
    return placings


def rank(rows: list[ModelRow], *, normalised: bool = True) -> list[dict]:
    """Ranked rows best first (normalised overall descending, then name), with ranks, rank ranges and
    bands; then the unranked ones (a required task missing), most complete first, with rank None.

    Ranks and bands always follow the normalised overall, the published one; `normalised=False`
    reports raw-score means and their intervals on the same order.
    """
    overall = {id(r): r.overall() for r in rows}
    missing = {id(r): len(r.missing) for r in rows}
    complete = [r for r in rows if r.complete]
    ranked = sorted(complete, key=lambda r: (-(overall[id(r)]), r.model, r.precision, r.chat_template))
    unranked = sorted((r for r in rows if not r.complete),
                      key=lambda r: (missing[id(r)], overall[id(r)] is None, -(overall[id(r)] or 0.0), r.model))
    ordered = ranked + unranked
    sizes = _paired_sizes(ordered)
    intervals, draws = draw_aggregates(ordered, sizes=sizes)
    placings = paired_placings(draws[:len(ranked)])
    if not normalised:
        intervals = draw_aggregates(ordered, normalised=False, sizes=sizes)[0]
    out = []
    for position, (row, iv) in enumerate(zip(ordered, intervals)):
        p = placings[position] if position < len(ranked) else None
        out.append({"rank": p.rank if p else None, "rank_range": [p.best, p.worst] if p else None,
                    "band": p.band if p else None, "ranked": p is not None, **row.as_dict(normalised, sizes),
                    "overall_ci": list(iv.overall) if iv.overall else None,
                    "capabilities_ci": {c: list(b) for c, b in iv.capabilities.items()}})
    return out


def rank_views(rows: list[ModelRow]) -> dict[tuple[bool, bool], list[dict]]:
    """The four views of one track's rows — (normalised means or raw, flagged rows shown or not) — as
    `rank` makes each, from one bootstrap of every row instead of four.

    A row's draws depend on its own scores and on the resampling weights the track's rows share (the
    item counts paired on, taken here over all rows), never on which other rows are shown: so the
    draws of all rows serve every view, and only the placings are made per view."""
    overall = {id(r): r.overall() for r in rows}
    missing = {id(r): len(r.missing) for r in rows}
    ranked = sorted((r for r in rows if r.complete),
                    key=lambda r: (-(overall[id(r)]), r.model, r.precision, r.chat_template))
    unranked = sorted((r for r in rows if not r.complete),
                      key=lambda r: (missing[id(r)], overall[id(r)] is None, -(overall[id(r)] or 0.0), r.model))
    ordered = ranked + unranked
    sizes = _paired_sizes(ordered)
    intervals = {True: None, False: None}
    intervals[True], draws = draw_aggregates(ordered, sizes=sizes)
    intervals[False] = draw_aggregates(ordered, normalised=False, sizes=sizes)[0]
    bodies = {normalised: [r.as_dict(normalised, sizes) for r in ordered] for normalised in (True, False)}
    any_flagged = any(r.flagged for r in ordered)
    views: dict[tuple[bool, bool], list[dict]] = {}
    for include_flagged in ((False, True) if any_flagged else (False,)):
        shown = [i for i, r in enumerate(ordered) if include_flagged or not r.flagged]
        ranked_shown = [i for i in shown if i < len(ranked)]
        placings = dict(zip(ranked_shown, paired_placings(draws[ranked_shown])))
        for normalised in (True, False):
            out = []
            for i in shown:
                p, iv = placings.get(i), intervals[normalised][i]
                out.append({"rank": p.rank if p else None, "rank_range": [p.best, p.worst] if p else None,
                            "band": p.band if p else None, "ranked": p is not None, **bodies[normalised][i],
                            "overall_ci": list(iv.overall) if iv.overall else None,
                            "capabilities_ci": {c: list(b) for c, b in iv.capabilities.items()}})
            views[(normalised, include_flagged)] = out
    if not any_flagged:
        views[(True, True)], views[(False, True)] = views[(True, False)], views[(False, False)]
    return views
