import pytest

from core.aggregate import ModelRow, TaskScore, bootstrap, normalise, rank, rank_bands


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


def scored(name: str, raw: float, stderr: float | None, capability: str = "understanding") -> ModelRow:
    r = ModelRow(1, name, "alice", "causal-lm", 10, "float32", "cpu", None)
    r.tasks["a"] = TaskScore("a", capability, raw, stderr, 0.25)
    return r


def test_bootstrap_interval_matches_the_normal_interval_of_one_task():
    # One task: normalised = (raw − 0.25)/0.75, so its stderr scales by 1/0.75 and the 95% interval
    # is the point ± 1.96 of that, up to Monte Carlo error.
    [iv] = bootstrap([scored("m", 0.70, 0.03)])
    half_width = 1.96 * 0.03 / 0.75
    assert iv.overall[0] == pytest.approx(0.6 - half_width, abs=0.01)
    assert iv.overall[1] == pytest.approx(0.6 + half_width, abs=0.01)
    assert iv.capabilities["understanding"] == pytest.approx(iv.overall)


def test_bootstrap_averages_errors_across_capabilities():
    r = scored("m", 0.70, 0.03)
    r.tasks["b"] = TaskScore("b", "cognition", 0.70, 0.03, 0.25)
    [iv] = bootstrap([r])
    # Two independent capabilities: the overall's spread is 1/√2 of each one's.
    width = iv.overall[1] - iv.overall[0]
    cap_width = iv.capabilities["cognition"][1] - iv.capabilities["cognition"][0]
    assert width == pytest.approx(cap_width / 2 ** 0.5, rel=0.1)


def test_bootstrap_is_seeded_and_each_model_stands_alone():
    alone = bootstrap([scored("m", 0.7, 0.03)])[0]
    assert bootstrap([scored("m", 0.7, 0.03)])[0] == alone
    with_others = bootstrap([scored("x", 0.3, 0.05), scored("m", 0.7, 0.03)])[1]
    assert with_others.overall == pytest.approx(alone.overall)


def test_a_score_without_stderr_has_a_zero_width_interval():
    [iv] = bootstrap([scored("m", 0.7, None)])
    assert iv.overall == pytest.approx((0.6, 0.6))


def test_raw_intervals_are_around_the_raw_mean():
    [iv] = bootstrap([scored("m", 0.7, 0.03)], normalised=False)
    assert iv.overall[0] < 0.7 < iv.overall[1]
    assert iv.overall[1] - iv.overall[0] == pytest.approx(2 * 1.96 * 0.03, abs=0.01)


def test_rank_ranges_and_bands_follow_overlapping_intervals():
    placings = rank_bands([0.9, 0.85, 0.5, 0.45, None],
                          [(0.8, 1.0), (0.75, 0.95), (0.4, 0.6), (0.35, 0.55), None])
    assert [(p.rank, p.best, p.worst, p.band) for p in placings] == [
        (1, 1, 2, 1), (2, 1, 2, 1), (3, 3, 4, 2), (4, 3, 4, 2), (5, None, None, None)]


def test_a_band_is_anchored_on_its_first_model():
    # b overlaps a and c overlaps b, but c does not reach a: c opens a new band.
    placings = rank_bands([0.9, 0.8, 0.7], [(0.85, 0.95), (0.75, 0.86), (0.65, 0.78)])
    assert [p.band for p in placings] == [1, 1, 2]
    assert [(p.best, p.worst) for p in placings] == [(1, 2), (1, 3), (2, 3)]


def test_rank_puts_unscored_models_last_with_no_band():
    ranked = rank([ModelRow(2, "empty", "bob", "clip", None, "float32", "cpu", None), row("m", a=("understanding", 1.0))])
    assert [(r["model"], r["band"], r["rank_range"], r["overall_ci"]) for r in ranked] == [
        ("m", 1, [1, 1], [1.0, 1.0]), ("empty", None, None, None)]


def test_capability_weights_from_the_track_weigh_the_overall():
    r = row("m", a=("understanding", 1.0), c=("cognition", 0.25))  # normalised: 1.0 and 0.0
    assert r.overall() == pytest.approx(0.5)
    r.weights = {"understanding": 3.0, "cognition": 1.0}
    assert r.overall() == pytest.approx(0.75)


def test_a_row_missing_a_required_task_is_listed_after_the_ranked_ones_without_a_rank():
    complete = row("complete", a=("understanding", 0.5), b=("cognition", 0.5))
    partial = row("partial", a=("understanding", 1.0))
    for r in (complete, partial):
        r.required = ("a", "b")
    ranked = rank([partial, complete])
    assert [(r["model"], r["rank"], r["ranked"], r["coverage"], r["missing_tasks"]) for r in ranked] == [
        ("complete", 1, True, "2/2 tasks", []), ("partial", None, False, "1/2 tasks", ["b"])]
    assert ranked[1]["overall_ci"] is not None  # its interval is shown; its rank is not
