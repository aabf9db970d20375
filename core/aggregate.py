"""Published aggregation (DESIGN §5): normalise each task's primary metric against its random
baseline, average tasks into capabilities and capabilities into an overall score.

Computed here, in one place, so the board, the CSV export and every API client agree.
"""
from dataclasses import dataclass, field
from statistics import mean


def normalise(raw: float, random_baseline: float) -> float:
    """(raw − random) / (1 − random): 0 is chance, 1 is perfect."""
    if random_baseline >= 1.0:
        return raw
    return (raw - random_baseline) / (1.0 - random_baseline)


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

    def capabilities(self) -> dict[str, float]:
        by_capability: dict[str, list[float]] = {}
        for score in self.tasks.values():
            by_capability.setdefault(score.capability, []).append(score.normalised)
        return {c: mean(v) for c, v in sorted(by_capability.items())}

    def overall(self) -> float | None:
        caps = self.capabilities()
        return mean(caps.values()) if caps else None

    def as_dict(self) -> dict:
        return {
            "model_id": self.model_id, "model": self.model, "owner": self.owner, "family": self.family,
            "params": self.params, "precision": self.precision, "hardware_class": self.hardware_class,
            "license": self.license, "flagged": self.flagged, "flag_reason": self.flag_reason,
            "overall": self.overall(), "capabilities": self.capabilities(),
            "tasks": {t: {"raw": s.raw, "stderr": s.stderr, "normalised": s.normalised, "capability": s.capability}
                      for t, s in sorted(self.tasks.items())},
        }


def rank(rows: list[ModelRow]) -> list[dict]:
    ordered = sorted(rows, key=lambda r: (r.overall() is None, -(r.overall() or 0.0), r.model))
    return [{"rank": i + 1, **row.as_dict()} for i, row in enumerate(ordered)]
