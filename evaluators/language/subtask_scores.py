"""Scores built from an lm-eval group's subtasks, the way the leaderboards defining them publish them.

A suite task's `args.subtask_scores` asks for them (datasets/suites/language-open-v2.yaml, language-zh.yaml):

    subtask_scores:
      metric: acc_norm                     # the lm-eval metric read from each result (filter "none")
      baselines: {<result>: <chance>, …}   # Open LLM Leaderboard v2: normalised_<metric>
      groups: {<name>: [<subtask>, …], …}  # subject groups: <metric>:<name>

`normalised_<metric>` follows the Open LLM Leaderboard (v2) normalisation: each listed result (a
subtask, or a group lm-eval already aggregates) is rescaled to its own random baseline,
(raw − chance) / (1 − chance), a below-chance score is clipped to 0, and the listed results are
averaged with equal weight. BBH and MuSR list their subtasks (their choices differ in number);
GPQA, MATH and MMLU-Pro list one result. The suite then declares random_baseline 0 for it: the
value is already normalised, and the aggregation leaves it as it is.

`<metric>:<group>` is a subject group's accuracy, its subtasks weighted by their item counts, as
lm-eval weights its own group aggregates (C-Eval's STEM / Social Science / Humanities / Other,
CMMLU's five categories).
"""
import math

from evaluators.base import MetricValue


class SubtaskScoreError(Exception):
    """The suite names a result lm-eval did not report: the suite's fault, not the model's (an infra error)."""


def _value(results: dict, name: str, metric: str) -> tuple[float, float | None]:
    entry = results.get(name)
    if entry is None or f"{metric},none" not in entry:
        raise SubtaskScoreError(f"lm-eval reported no {metric} for {name!r} (the suite's subtask_scores name it)")
    stderr = entry.get(f"{metric}_stderr,none")
    finite = isinstance(stderr, (int, float)) and math.isfinite(stderr)
    return float(entry[f"{metric},none"]), float(stderr) if finite else None


def _count(result: dict, name: str) -> int:
    return int(result.get("n-samples", {}).get(name, {}).get("effective", 0))


def open_llm_normalised(raw: float, chance: float) -> float:
    """The Open LLM Leaderboard's normalisation of one score: 0 at (or below) chance, 1 at perfect."""
    if raw <= chance:
        return 0.0
    return (raw - chance) / (1.0 - chance)


def subtask_metrics(result: dict, args: dict, primary_metric: str | None) -> list[MetricValue]:
    config = args.get("subtask_scores")
    if not config:
        return []
    metric, results = config["metric"], result["results"]
    out = []
    baselines = config.get("baselines") or {}
    if baselines:
        values, variance = [], 0.0
        for name, chance in baselines.items():
            raw, stderr = _value(results, name, metric)
            values.append(open_llm_normalised(raw, float(chance)))
            if stderr is not None and raw > chance:  # a clipped score does not move with its raw value
                variance += (stderr / (1.0 - float(chance))) ** 2
        name = f"normalised_{metric}"
        total = sum(_count(result, r) for r in baselines) or None
        out.append(MetricValue(name=name, value=math.fsum(values) / len(values),
                               stderr=math.sqrt(variance) / len(values), n=total, primary=primary_metric == name))
    for group, subtasks in (config.get("groups") or {}).items():
        pairs = [(_value(results, s, metric), _count(result, s)) for s in subtasks]
        n = sum(c for _, c in pairs)
        if not n:
            continue
        value = math.fsum(v * c for (v, _), c in pairs) / n
        stderr = math.sqrt(math.fsum((se * c) ** 2 for (_, se), c in pairs if se is not None)) / n
        name = f"{metric}:{group}"
        out.append(MetricValue(name=name, value=value, stderr=stderr, n=n, primary=primary_metric == name))
    return out
