"""Two to four rows of one track side by side, each against the first (the reference), with paired tests.

Per task the difference is paired item by item (core.paired_stats): McNemar's test where both
models' items are 0/1, a paired bootstrap otherwise, and the stderr-based fallback, named as such,
where a side has no per-item results. Capabilities and the overall combine the tasks' difference
draws (the same item resampling on both sides), so their intervals are paired too. Every
difference comes with a verdict in words. All differences are in normalised units (0 chance, 1 perfect).
"""
import numpy as np

from core import paired_stats
from core.aggregate import ModelRow, TaskScore, _scale
from core.tracks import Track

PAIRED = "paired bootstrap over items"


def _task_difference(task: str, a: TaskScore, b: TaskScore) -> tuple[paired_stats.PairedDifference, np.ndarray]:
    observed = a.normalised - b.normalised
    if a.items is not None and b.items is not None and len(a.items) == len(b.items):
        result, draws = paired_stats.paired_items(a.items, b.items, task, scale=_scale(a.random_baseline))
        # Centre on the scores' difference (the board's numbers); the items' mean may differ from a
        # score by the evaluator's rounding.
        shift = observed - result.difference
        return paired_stats.PairedDifference(observed, result.low + shift, result.high + shift, result.test,
                                             result.p_value, result.items, result.method), draws + shift
    scale = _scale(a.random_baseline)
    return paired_stats.parametric(observed, (a.stderr or 0.0) * scale, (b.stderr or 0.0) * scale, task)


def _method(results: list[paired_stats.PairedDifference]) -> str:
    fallback = [r for r in results if r.method != PAIRED]
    if not fallback:
        return PAIRED
    if len(fallback) == len(results):
        return "parametric (stderr)"
    return f"{PAIRED}; parametric (stderr) for {len(fallback)} of {len(results)} tasks"


def paired_comparison(track: Track, a: ModelRow, b: ModelRow, label_a: str, label_b: str) -> list[dict]:
    """A − B per task (the tasks both have), per capability and overall, each with CI, test and verdict."""
    tasks, task_draws = [], {}
    for spec in track.tasks:
        if spec.name in a.tasks and spec.name in b.tasks:
            result, draws = _task_difference(spec.name, a.tasks[spec.name], b.tasks[spec.name])
            task_draws[spec.name] = (spec.capability, result, draws)
            tasks.append({"kind": "task", "name": spec.name, "capability": spec.capability, **result.as_dict(),
                          "verdict": paired_stats.verdict(label_a, label_b, spec.name, result)})
    by_capability: dict[str, list[tuple[paired_stats.PairedDifference, np.ndarray]]] = {}
    for capability, result, draws in task_draws.values():
        by_capability.setdefault(capability, []).append((result, draws))
    aggregates, cap_draws = [], {}
    for capability, entries in by_capability.items():
        difference = float(np.mean([r.difference for r, _ in entries]))
        draws = np.mean([d for _, d in entries], axis=0)
        result = paired_stats.from_draws(difference, draws, _method([r for r, _ in entries]))
        cap_draws[capability] = (difference, draws, [r for r, _ in entries])
        aggregates.append({"kind": "capability", "name": capability, **result.as_dict(),
                           "verdict": paired_stats.verdict(label_a, label_b, capability, result)})
    if cap_draws:
        weights = np.array([track.weight(c) for c in cap_draws])
        difference = float(np.dot(weights, [d for d, _, _ in cap_draws.values()]) / weights.sum())
        draws = np.tensordot(weights, np.stack([d for _, d, _ in cap_draws.values()]), axes=1) / weights.sum()
        result = paired_stats.from_draws(difference, draws,
                                         _method([r for _, _, rs in cap_draws.values() for r in rs]))
        aggregates.insert(0, {"kind": "overall", "name": "overall", **result.as_dict(),
                              "verdict": paired_stats.verdict(label_a, label_b, "overall", result)})
    return aggregates + tasks
