"""Tracks: what one ranking compares (DESIGN §5, "Rankings compare like with like").

A track is one suite at one version, `language-core@1.2`, under the precision policy its YAML
states. Every score belongs to exactly one track, the one of its submission's suite and version;
the board ranks one track at a time and never mixes two. How a track aggregates (which tasks are
required, the capabilities' weights, which precisions it accepts, where per-item values are read,
which tasks report a contamination gap) is written in the suite's `aggregation:` block, so the
About page can publish it as it is applied.

Efficiency suites are not tracks: their measurements are shown per hardware class on their own view.
"""
from dataclasses import dataclass
from functools import cached_property, lru_cache

from core.catalog import Suite, TaskSpec, load_suites
from core.errors import InvalidRequestError

EFFICIENCY = "efficiency"
ALL_PRECISIONS = ("float32", "bfloat16", "float16", "int8", "int4")  # 8/4-bit: GPU classes (core/precisions.py)
# The keys an `aggregation:` block may hold (an allow-list: a typo is an error at load, not ignored).
AGGREGATION_KEYS = {"default_for_family", "required_tasks", "capability_weights", "precisions", "item_metrics",
                    "contamination_tasks"}


@dataclass(frozen=True)
class Track:
    suite: str
    version: str
    family: str
    description: str
    tasks: tuple[TaskSpec, ...]
    required: tuple[str, ...]
    capability_weights: tuple[tuple[str, float], ...]
    precisions: tuple[str, ...]
    item_metrics: tuple[tuple[str, str], ...]
    contamination_tasks: tuple[str, ...]
    default_for_family: bool

    @property
    def id(self) -> str:
        return track_id(self.suite, self.version)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @cached_property
    def _by_name(self) -> dict[str, TaskSpec]:
        return {t.name: t for t in self.tasks}

    def task(self, name: str) -> TaskSpec | None:
        return self._by_name.get(name)  # once per score when a board is built: a dict, not a scan

    def weight(self, capability: str) -> float:
        return dict(self.capability_weights).get(capability, 1.0)

    def item_metric(self, task: TaskSpec) -> str:
        """The key of a sample's `metrics` holding this task's per-item value: as the YAML says, else the
        primary metric's name before lm-eval's filter (`exact_match,strip` → `exact_match`)."""
        return dict(self.item_metrics).get(task.name) or task.primary_metric.split(",", 1)[0]

    def describe(self) -> dict:
        """The track's aggregation rules as published (GET /tracks, the About page)."""
        return {"id": self.id, "suite": self.suite, "version": self.version, "family": self.family,
                "description": self.description, "default_for_family": self.default_for_family,
                "tasks": [{"name": t.name, "capability": t.capability, "primary_metric": t.primary_metric,
                           "random_baseline": t.random_baseline, "required": t.name in self.required,
                           "item_metric": self.item_metric(t)} for t in self.tasks],
                "required_tasks": list(self.required),
                "capability_weights": dict(self.capability_weights), "precisions": list(self.precisions),
                "contamination_tasks": list(self.contamination_tasks),
                "ranked_when": f"a finished primary score for each of the {len(self.required)} required tasks, "
                               "all from one submission; one row per precision"}


def track_id(suite: str, version: str) -> str:
    return f"{suite}@{version}"


def _track(suite: Suite) -> Track:
    spec = suite.aggregation
    unknown = set(spec) - AGGREGATION_KEYS
    if unknown:
        raise ValueError(f"suite {suite.name}: unknown aggregation keys {sorted(unknown)}; "
                         f"allowed: {sorted(AGGREGATION_KEYS)}")
    names = [t.name for t in suite.tasks]
    required = spec.get("required_tasks", "all")
    required = names if required == "all" else list(required)
    capabilities = sorted({t.capability for t in suite.tasks})
    weights = {c: float(w) for c, w in (spec.get("capability_weights") or {}).items()}
    for what, listed, known in (("required_tasks", required, names),
                                ("capability_weights", weights, capabilities),
                                ("item_metrics", spec.get("item_metrics") or {}, names),
                                ("contamination_tasks", spec.get("contamination_tasks") or [], names),
                                ("precisions", spec.get("precisions") or [], ALL_PRECISIONS)):
        stray = [x for x in listed if x not in known]
        if stray:
            raise ValueError(f"suite {suite.name}: {what} names {stray}, not among {list(known)}")
    if any(w <= 0 for w in weights.values()):
        raise ValueError(f"suite {suite.name}: capability weights must be positive")
    return Track(suite=suite.name, version=suite.version, family=suite.family, description=suite.description,
                 tasks=suite.tasks, required=tuple(required),
                 capability_weights=tuple((c, weights.get(c, 1.0)) for c in capabilities),
                 precisions=tuple(spec.get("precisions") or ALL_PRECISIONS),
                 item_metrics=tuple(sorted((spec.get("item_metrics") or {}).items())),
                 contamination_tasks=tuple(spec.get("contamination_tasks") or ()),
                 default_for_family=bool(spec.get("default_for_family", False)))


@lru_cache
def load_tracks() -> dict[str, Track]:
    """Every ranked track, by id; efficiency suites are measurements, not tracks."""
    return {t.id: t for t in (_track(s) for s in load_suites().values()
                              if any(task.capability != EFFICIENCY for task in s.tasks))}


def track_of(suite: str, version: str | None) -> Track | None:
    """The track a submission's scores belong to. A submission from before versions were recorded
    (version NULL, which migration 0004 backfills) counts as the suite's current version."""
    suites = load_suites()
    if version is None and suite in suites:
        version = suites[suite].version
    return load_tracks().get(track_id(suite, version or ""))


def default_track(family: str | None = None) -> Track:
    """The family's default track (`default_for_family: true`); with no family, the language one."""
    tracks = list(load_tracks().values())
    family = family or "causal-lm"
    for candidates in ([t for t in tracks if t.family == family and t.default_for_family],
                       [t for t in tracks if t.family == family], tracks):
        if candidates:
            return candidates[0]
    raise InvalidRequestError("no track is declared (datasets/suites/*.yaml)", field="track")


def get_track(track: str | None, family: str | None = None) -> Track:
    """The track a request names (`language-core@1.2`, or a suite name for its current version), or
    the default one for `family`."""
    if not track:
        return default_track(family)
    tracks = load_tracks()
    if track in tracks:
        return tracks[track]
    suites = load_suites()
    if track in suites and track_id(track, suites[track].version) in tracks:
        return tracks[track_id(track, suites[track].version)]
    raise InvalidRequestError(f"unknown track {track[:80]!r}; tracks: {', '.join(sorted(tracks))}", field="track")
