"""Suites and tasks, declared in YAML under datasets/suites (DESIGN §5)."""
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from core.config import get_settings
from core.errors import InvalidRequestError


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite: enough to rebuild the evaluation exactly."""
    name: str
    capability: str
    evaluator: str
    primary_metric: str
    random_baseline: float
    args: dict = field(default_factory=dict)
    gated: bool = False
    """Its data is gated upstream (GPQA): per-sample records are shown to the owner (and admins) only."""

    def config_hash(self) -> str:
        blob = json.dumps({"name": self.name, "evaluator": self.evaluator, "args": self.args}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    family: str
    description: str
    tasks: tuple[TaskSpec, ...]
    aggregation: dict = field(default_factory=dict, compare=False)
    """How the suite's track ranks (its `aggregation:` block); read by core.tracks."""

    def task(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise InvalidRequestError(f"suite {self.name!r} has no task {name!r}; it has: "
                                  f"{', '.join(t.name for t in self.tasks)}", field="tasks")


@lru_cache
def load_suites() -> dict[str, Suite]:
    suites = {}
    for path in sorted((get_settings().datasets_dir / "suites").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        tasks = tuple(TaskSpec(**t) for t in raw["tasks"])
        suites[raw["name"]] = Suite(raw["name"], str(raw["version"]), raw["family"], raw.get("description", ""), tasks,
                                    dict(raw.get("aggregation") or {}))
    return suites


def get_suite(name: str) -> Suite:
    suites = load_suites()
    if name not in suites:
        raise InvalidRequestError(f"unknown suite {name!r}; known suites: {', '.join(sorted(suites))}", field="suite")
    return suites[name]
