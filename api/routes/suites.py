"""The catalogue: suites with their tasks and datasets, and how the board's numbers are made."""
import json
from functools import lru_cache

from fastapi import APIRouter

from api.schemas import AggregationPublic, SuitePublic
from core import aggregate
from core.catalog import load_suites
from core.config import get_settings

router = APIRouter(tags=["catalogue"])


@lru_cache
def dataset_manifest(dataset: str) -> dict | None:
    """The bundled dataset's manifest (name, version, seed, license, how made, sha256 per split)."""
    path = get_settings().datasets_dir / dataset / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


@router.get("/suites", response_model=list[SuitePublic])
def list_suites() -> list[dict]:
    """Suites, their tasks, and the manifest of the dataset each task reads (absent for remote data)."""
    return [{"name": s.name, "version": s.version, "family": s.family, "description": s.description,
             "aggregation": s.aggregation,
             "tasks": [{"name": t.name, "capability": t.capability, "primary_metric": t.primary_metric,
                        "random_baseline": t.random_baseline, "evaluator": t.evaluator,
                        "dataset": dataset_manifest(t.args["dataset"]) if "dataset" in t.args else None}
                       for t in s.tasks]}
            for s in load_suites().values()]


@router.get("/aggregation", response_model=AggregationPublic)
def aggregation() -> dict:
    """How the board's numbers are made from the scores, in words and with the bootstrap's settings."""
    return {
        "normalised": "(raw − random baseline) / (1 − random baseline), per task, from its primary metric: "
                      "0 is chance, 1 is perfect",
        "capability": "mean of the normalised scores of the capability's tasks",
        "overall": "mean of the capability scores, weighted as the track's suite YAML states (efficiency "
                   "measurements are shown beside, not averaged in)",
        "track": "one suite at one version (suite@version): a ranking never mixes tracks; a row is one model at "
                 "one precision on one track, from one submission (GET /leaderboard/tracks lists each track's rules)",
        "coverage": "a row is ranked only with a finished primary score for every required task of its track; "
                    "partial rows are listed after the ranking, unranked, with their coverage and missing tasks",
        "interval": f"{aggregate.LEVEL:.0%} percentile bootstrap, {aggregate.DRAWS} draws, over items: each draw "
                    "resamples every task's items (the same items for every model, so draws are paired across "
                    "models) and adds the resampled mean's deviation to the task's score; tasks without per-item "
                    "results use the named fallback, parametric: raw + stderr · z (z standard normal, seeded per "
                    "task name); then the capabilities and overall are recomputed",
        "rank_range": "the 2.5th to 97.5th percentile of the row's rank across the paired draws",
        "band": "a band opens with the best row not yet placed and holds each following row whose paired "
                "difference from that first row is not significant at 95%",
        "compare": "GET /compare: per task, capability and overall the paired difference with its 95% interval, "
                   "McNemar's test for 0/1 items (exact below 25 discordant items) or a paired bootstrap test "
                   "otherwise, and a verdict in words",
        "draws": aggregate.DRAWS, "seed": aggregate.SEED, "level": aggregate.LEVEL,
    }
