from fastapi import APIRouter

from core.catalog import load_suites
from core.config import get_settings

router = APIRouter(tags=["catalogue"])


@router.get("/suites")
def list_suites() -> list[dict]:
    return [{"name": s.name, "version": s.version, "family": s.family, "description": s.description,
             "tasks": [{"name": t.name, "capability": t.capability, "primary_metric": t.primary_metric,
                        "random_baseline": t.random_baseline, "evaluator": t.evaluator} for t in s.tasks]}
            for s in load_suites().values()]


@router.get("/hardware-classes")
def hardware_classes() -> list[str]:
    return get_settings().hardware_classes
