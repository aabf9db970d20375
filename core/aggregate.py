"""Published aggregation (DESIGN §5): normalise each task's primary metric against its random
baseline, average tasks into capabilities and capabilities into an overall score; put a seeded
bootstrap confidence interval on every aggregate and group models whose intervals overlap into
rank bands.

Computed here, in one place, so the board, the CSV export and every API client agree.

The bootstrap is parametric, over per-task scores: each draw replaces a task's raw score by
`raw + stderr · z` with z standard normal (tasks without a stderr stay fixed), then recomputes
the capability means and the overall mean from the drawn scores. The interval is the 2.5th and
97.5th percentile of the draws. Per-sample resampling would need every sample of every run
(millions of rows at board scale) for an interval that is, for a mean of accuracies, the same.

Draws are seeded per task name, not per model: a model's interval depends only on its own
scores, so it does not move when other models are added, and the whole board is one matrix
product per capability (fast at 10,000 models).
"""
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

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

    @property
    def normalised(self) -> float:
        return normalise(self.raw, self.random_baseline)


@dataclass
class ModelRow:
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

    def capabilities(self, normalised: bool = True) -> dict[str, float]:
        by_capability: dict[str, list[float]] = {}
        for score in self.tasks.values():
            by_capability.setdefault(score.capability, []).append(score.normalised if normalised else score.raw)
        return {c: mean(v) for c, v in sorted(by_capability.items())}

    def overall(self, normalised: bool = True) -> float | None:
        caps = self.capabilities(normalised)
        return mean(caps.values()) if caps else None

    def as_dict(self, normalised: bool = True) -> dict:
        return {
            "model_id": self.model_id, "model": self.model, "owner": self.owner, "family": self.family,
            "params": self.params, "precision": self.precision, "hardware_class": self.hardware_class,
            "license": self.license, "flagged": self.flagged, "flag_reason": self.flag_reason,
            "overall": self.overall(normalised), "capabilities": self.capabilities(normalised),
            "tasks": {t: {"raw": s.raw, "stderr": s.stderr, "normalised": s.normalised, "capability": s.capability}
                      for t, s in sorted(self.tasks.items())},
        }


@dataclass
class Intervals:
    """Bootstrap intervals of one model's aggregates: (low, high) per capability and overall."""
    overall: tuple[float, float] | None
    capabilities: dict[str, tuple[float, float]]


def task_draws(task: str, draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """The standard-normal draws used for this task, the same for every model."""
    # float32: the draws only feed percentiles, and half the memory traffic is half the time.
    return np.random.default_rng([seed, zlib.crc32(task.encode())]).standard_normal(draws, dtype=np.float32)


def bootstrap(rows: list[ModelRow], *, normalised: bool = True, draws: int = DRAWS, seed: int = SEED,
              level: float = LEVEL, chunk: int = 1024) -> list[Intervals]:
    """Percentile intervals for every row's capabilities and overall, in the order of `rows`.

    Every aggregate is linear in the task scores, so a capability's draws are its point value
    plus (weights · stderr · scale) @ z: one matrix product per capability for a chunk of models.
    """
    tasks = sorted({t for r in rows for t in r.tasks})
    index = {t: i for i, t in enumerate(tasks)}
    z = np.stack([task_draws(t, draws, seed) for t in tasks]) if tasks else np.zeros((0, draws), dtype=np.float32)
    tail = (1.0 - level) / 2 * 100
    result: list[Intervals] = []
    for start in range(0, len(rows), chunk):
        result.extend(_bootstrap_chunk(rows[start:start + chunk], index, z, normalised, (tail, 100 - tail)))
    return result


def _bootstrap_chunk(rows: list[ModelRow], index: dict[str, int], z: np.ndarray, normalised: bool,
                     percentiles: tuple[float, float]) -> list[Intervals]:
    capabilities = sorted({s.capability for r in rows for s in r.tasks.values()})
    cap_index = {c: k for k, c in enumerate(capabilities)}
    # One pass over the scores collecting coordinates; numpy fills the arrays at once (element-wise
    # numpy assignment in the loop is ten times slower).
    ks, rs, ts, spreads, values = [], [], [], [], []
    for i, row in enumerate(rows):
        for s in row.tasks.values():
            ks.append(cap_index[s.capability]), rs.append(i), ts.append(index[s.task])
            spreads.append((s.stderr or 0.0) * (_scale(s.random_baseline) if normalised else 1.0))
            values.append(s.normalised if normalised else s.raw)
    spread = np.zeros((len(capabilities), len(rows), len(index)), dtype=np.float32)
    spread[ks, rs, ts] = spreads
    total = np.zeros((len(capabilities), len(rows)))
    count = np.zeros((len(capabilities), len(rows)))
    np.add.at(total, (ks, rs), values)
    np.add.at(count, (ks, rs), 1)
    overall_sum = np.zeros((len(rows), z.shape[1]), dtype=np.float32)
    bounds = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(len(capabilities)):
            has = count[k] > 0
            cap_draws = (spread[k] / np.maximum(count[k], 1)[:, None].astype(np.float32)) @ z
            cap_draws += (total[k] / count[k]).astype(np.float32)[:, None]
            bounds.append(np.percentile(cap_draws, percentiles, axis=1).T)
            overall_sum[has] += cap_draws[has]
        n_caps = (count > 0).sum(axis=0)
        overall_bounds = np.percentile(overall_sum / n_caps[:, None], percentiles, axis=1).T
    return [Intervals(overall=(float(overall_bounds[i, 0]), float(overall_bounds[i, 1])) if n_caps[i] else None,
                      capabilities={c: (float(bounds[k][i, 0]), float(bounds[k][i, 1]))
                                    for c, k in cap_index.items() if count[k, i]})
            for i in range(len(rows))]


@dataclass(frozen=True)
class Placing:
    """Where a model stands: its rank, the ranks it could hold given the intervals, and its band."""
    rank: int
    best: int | None
    worst: int | None
    band: int | None


def rank_bands(points: list[float | None], intervals: list[tuple[float, float] | None]) -> list[Placing]:
    """Placings for models already sorted best first.

    A model's rank range runs from 1 + the number of models certainly better (their low above its
    high) to the number of models not certainly worse (their high at or above its low). A band
    opens with the best model not yet placed and holds every following model whose interval
    still reaches the opener's low: their differences from the opener are not significant.
    Unscored models (point None) get a rank but no range and no band.
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


def rank(rows: list[ModelRow], *, normalised: bool = True) -> list[dict]:
    """Rows best first (normalised overall descending, then name), with ranks, rank ranges and bands.

    Ranks and bands always follow the normalised overall, the published one; `normalised=False`
    reports raw-score means and their intervals on the same order.
    """
    overall = {id(r): r.overall() for r in rows}
    ordered = sorted(rows, key=lambda r: (overall[id(r)] is None, -(overall[id(r)] or 0.0), r.model))
    intervals = bootstrap(ordered)
    placings = rank_bands([overall[id(r)] for r in ordered], [iv.overall for iv in intervals])
    if not normalised:
        intervals = bootstrap(ordered, normalised=False)
    return [{"rank": p.rank, "rank_range": [p.best, p.worst] if p.band else None, "band": p.band,
             **row.as_dict(normalised),
             "overall_ci": list(iv.overall) if iv.overall else None,
             "capabilities_ci": {c: list(b) for c, b in iv.capabilities.items()}}
            for row, iv, p in zip(ordered, intervals, placings)]
