import json
from functools import lru_cache

from fastapi import APIRouter

from core import aggregate
from core.catalog import load_suites
from core.config import get_settings

router = APIRouter(tags=["catalogue"])


@lru_cache
def dataset_manifest(dataset: str) -> dict | None:
    """The bundled dataset's manifest (name, version, seed, license, how made, sha256 per split)."""
    path = get_settings().datasets_dir / dataset / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


@router.get("/suites")
def list_suites() -> list[dict]:
    """Suites, their tasks, and the manifest of the dataset each task reads (absent for remote data)."""
    return [{"name": s.name, "version": s.version, "family": s.family, "description": s.description,
             "tasks": [{"name": t.name, "capability": t.capability, "primary_metric": t.primary_metric,
                        "random_baseline": t.random_baseline, "evaluator": t.evaluator,
                        "dataset": dataset_manifest(t.args["dataset"]) if "dataset" in t.args else None}
                       for t in s.tasks]}
            for s in load_suites().values()]


@router.get("/aggregation")
def aggregation() -> dict:
    """How the board's numbers are made from the scores, in words and with the bootstrap's settings."""
    return {
        "normalised": "(raw − random baseline) / (1 − random baseline), per task, from its primary metric: "
                      "0 is chance, 1 is perfect",
        "capability": "mean of the normalised scores of the capability's tasks",
        "overall": "mean of the capability scores (efficiency measurements are shown beside, not averaged in)",
        "latest": "each task counts its latest finished run",
        "interval": f"{aggregate.LEVEL:.0%} percentile bootstrap: {aggregate.DRAWS} draws; each draw replaces every "
                    "task's raw score by raw + stderr · z (z standard normal, seeded per task name), then recomputes "
                    "the capabilities and overall",
        "rank_range": "best rank = 1 + the models whose interval lies wholly above; worst rank = the models whose "
                      "interval reaches at or above this one's low end",
        "band": "models share a band with the first model above them whose interval they still overlap",
        "draws": aggregate.DRAWS, "seed": aggregate.SEED, "level": aggregate.LEVEL,
    }


@router.get("/hardware-classes")
def hardware_classes() -> list[str]:
    return get_settings().hardware_classes
