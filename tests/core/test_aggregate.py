import pytest

from core.aggregate import ModelRow, TaskScore, normalise, rank


def test_normalise_maps_chance_to_zero_and_perfect_to_one():
    assert normalise(0.25, 0.25) == 0.0
    assert normalise(1.0, 0.25) == 1.0
    assert normalise(0.625, 0.25) == pytest.approx(0.5)
    assert normalise(0.1, 0.25) < 0  # below chance stays visible


def row(name: str, **tasks: tuple[str, float]) -> ModelRow:
    r = ModelRow(1, name, "alice", "causal-lm", 10, "float32", "cpu", None)
    for task, (capability, raw) in tasks.items():
        r.tasks[task] = TaskScore(task, capability, raw, None, 0.25)
    return r


def test_overall_is_the_mean_of_capability_means():
    r = row("m", a=("understanding", 1.0), b=("understanding", 0.25), c=("cognition", 0.625))
    assert r.capabilities() == {"cognition": pytest.approx(0.5), "understanding": pytest.approx(0.5)}
    assert r.overall() == pytest.approx(0.5)


def test_rank_orders_by_overall_descending():
    ranked = rank([row("low", a=("understanding", 0.3)), row("high", a=("understanding", 0.9))])
    assert [(r["rank"], r["model"]) for r in ranked] == [(1, "high"), (2, "low")]
