"""Paired statistics on seeded per-item results, checked against scipy and against the truth that made them."""
import numpy as np
import pytest
from scipy import stats

from core import paired_stats
from core.aggregate import ModelRow, TaskScore, draw_aggregates, paired_placings, rank, rank_bands

N_ITEMS = 500
TRUE_A, TRUE_B = 0.70, 0.62


def two_models(seed: int = 3, n: int = N_ITEMS) -> tuple[np.ndarray, np.ndarray]:
    """Items of shared difficulty d ~ U(0, 1): A answers those with d < 0.70, B those with d < 0.62,
    so A − B is 0.08 in truth, and the two models' results are strongly correlated item by item."""
    difficulty = np.random.default_rng(seed).random(n)
    return (difficulty < TRUE_A).astype(float), (difficulty < TRUE_B).astype(float)


def unpaired_interval(a: np.ndarray, b: np.ndarray, draws: int = paired_stats.DRAWS) -> tuple[float, float]:
    """The interval of A − B from two independent bootstraps (what ignoring the pairing gives)."""
    rng = np.random.default_rng(11)
    resample = lambda x: x[rng.integers(0, len(x), size=(draws, len(x)))].mean(axis=1)  # noqa: E731
    return paired_stats.percentile_interval(resample(a) - resample(b))


def test_the_paired_interval_is_narrower_than_the_unpaired_one_and_covers_the_truth():
    a, b = two_models()
    result, draws = paired_stats.paired_items(a, b, "world_facts")
    low, high = unpaired_interval(a, b)
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert result.low <= TRUE_A - TRUE_B <= result.high
    assert low <= TRUE_A - TRUE_B <= high
    assert (result.high - result.low) < 0.5 * (high - low)
    assert result.method == "paired bootstrap over items" and result.items == N_ITEMS
    assert len(draws) == paired_stats.DRAWS


def test_the_paired_interval_covers_the_truth_in_nineteen_of_twenty_seeds_or_so():
    results = [paired_stats.paired_items(*two_models(seed), "world_facts")[0] for seed in range(40)]
    covered = sum(r.low <= TRUE_A - TRUE_B <= r.high for r in results)
    assert covered >= 34  # 95% nominal: 38 expected; 34 is over 2 binomial sd below


@pytest.mark.parametrize("only_a,only_b", [(0, 0), (1, 0), (3, 9), (7, 7), (12, 2), (0, 24), (30, 12), (150, 171)])
def test_mcnemar_exact_matches_scipys_binomial_test(only_a, only_b):
    test = paired_stats.mcnemar(only_a, only_b, exact=True)
    expected = 1.0 if only_a + only_b == 0 else stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert test.exact and test.p_value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("only_a,only_b", [(30, 12), (150, 171), (40, 0), (25, 25), (13, 40)])
def test_mcnemar_chi_square_matches_scipy(only_a, only_b):
    test = paired_stats.mcnemar(only_a, only_b, exact=False)
    statistic = (abs(only_a - only_b) - 1) ** 2 / (only_a + only_b)
    assert test.statistic == pytest.approx(statistic)
    assert test.p_value == pytest.approx(stats.chi2.sf(statistic, df=1), rel=1e-9)
    # scipy's own McNemar-as-chi-square: the 2×2 table's discordant cells, continuity corrected.
    table = np.array([[10, only_a], [only_b, 10]])
    expected = stats.chi2.sf((abs(table[0, 1] - table[1, 0]) - 1) ** 2 / (table[0, 1] + table[1, 0]), 1)
    assert test.p_value == pytest.approx(expected)


def test_the_paired_test_on_items_is_mcnemar_on_their_discordant_pairs():
    a, b = two_models(n=200)
    result, _ = paired_stats.paired_items(a, b, "t")
    only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    expected = paired_stats.mcnemar(only_a, only_b)
    assert result.test == expected.name and result.p_value == expected.p_value
    assert result.p_value < 1e-3
    # Few disagreements: the exact version.
    few, _ = paired_stats.paired_items(np.array([1, 1, 1, 0, 1.0]), np.array([1, 0, 1, 0, 0.0]), "t")
    assert few.test == "McNemar exact" and few.p_value == pytest.approx(stats.binomtest(2, 2, 0.5).pvalue)


def test_non_binary_items_use_a_paired_bootstrap_test():
    rng = np.random.default_rng(5)
    base = rng.random(300)
    result, _ = paired_stats.paired_items(base + 0.05, base + rng.normal(0, 0.01, 300), "bleu")
    assert result.test == "paired bootstrap" and result.p_value < 0.01
    same, _ = paired_stats.paired_items(base, base + rng.normal(0, 0.05, 300), "bleu")
    assert same.p_value > 0.05 or same.low <= 0 <= same.high


def test_mismatched_items_are_refused():
    with pytest.raises(ValueError):
        paired_stats.paired_items(np.ones(3), np.ones(4), "t")


def test_verdicts_name_the_winner_in_plain_words():
    win = paired_stats.PairedDifference(0.06, 0.02, 0.10, "McNemar exact", 0.01, 100, "paired bootstrap over items")
    assert paired_stats.verdict("A", "B", "cognition", win) == "A beats B on cognition: +0.06 [0.02, 0.10]"
    loss = paired_stats.PairedDifference(-0.06, -0.10, -0.02, "McNemar exact", 0.01, 100, "x")
    assert paired_stats.verdict("A", "B", "cognition", loss) == "B beats A on cognition: +0.06 [0.02, 0.10]"
    tie = paired_stats.PairedDifference(0.01, -0.03, 0.05, "McNemar exact", 0.6, 100, "x")
    assert paired_stats.verdict("A", "B", "overall", tie) == (
        "A and B are not distinguishable on overall: +0.01 [-0.03, 0.05]")


def test_the_parametric_fallback_is_named_and_independent_per_side():
    result, draws = paired_stats.parametric(0.1, 0.03, 0.04, "t")
    assert result.method == "parametric (stderr)" and result.items is None
    assert result.high - result.low == pytest.approx(2 * 1.96 * 0.05, rel=0.1)


def rows_with_items(a: np.ndarray, b: np.ndarray) -> list[ModelRow]:
    rows = []
    for i, (name, items) in enumerate((("A", a), ("B", b))):
        row = ModelRow(i, name, "alice", "causal-lm", 10, "float32", "cpu", None, required=("t",))
        row.tasks["t"] = TaskScore("t", "understanding", float(items.mean()),
                                   float(items.std(ddof=1) / np.sqrt(len(items))), 0.0, items)
        rows.append(row)
    return rows


def test_rank_bands_from_paired_draws_separate_what_independent_intervals_cannot():
    a, b = two_models(n=300)
    a, b = a.copy(), b.copy()
    b[np.flatnonzero((a == 1) & (b == 0))[:10]] = 1  # A − B: about 0.05, consistently so item by item
    rows = rows_with_items(a, b)
    intervals, draws = draw_aggregates(rows)
    # Each row's own interval is wide (one model's items vary a lot) and the two overlap...
    assert intervals[0].overall[0] < intervals[1].overall[1]
    overlapping = rank_bands([r.overall() for r in rows], [iv.overall for iv in intervals])
    assert [p.band for p in overlapping] == [1, 1]
    # ...but on the same items A is ahead in every draw: ranks and bands from the paired draws separate them.
    assert [(p.best, p.worst, p.band) for p in paired_placings(draws)] == [(1, 1, 1), (2, 2, 2)]
    ranked = rank(rows)
    assert [(r["model"], r["rank_range"], r["band"], r["interval_method"]) for r in ranked] == [
        ("A", [1, 1], 1, "paired bootstrap over items"), ("B", [2, 2], 2, "paired bootstrap over items")]


def test_board_intervals_from_items_are_the_bootstrap_of_the_mean():
    a, _ = two_models()
    [iv], _ = draw_aggregates(rows_with_items(a, a)[:1])
    se = a.std() / np.sqrt(len(a))
    assert iv.overall[0] == pytest.approx(a.mean() - 1.96 * se, abs=0.01)
    assert iv.overall[1] == pytest.approx(a.mean() + 1.96 * se, abs=0.01)


def test_a_row_scored_on_other_items_falls_back_to_its_stderr():
    a, b = two_models()
    rows = rows_with_items(a, b[:400])  # B saw 400 items, A 500: they cannot be paired
    rows.append(rows_with_items(a, a)[0])
    rows[2].model = "A2"
    ranked = {r["model"]: r for r in rank(rows)}
    assert ranked["B"]["interval_method"] == "parametric (stderr)"
    assert ranked["A"]["interval_method"] == "paired bootstrap over items"
