"""Paired statistics from per-item results: two models scored on the same items are compared item by item.

Every model of a track answers the same items, so their per-item results are paired. Resampling the
items (one bootstrap draw = one multiset of item indices, the same for every model) keeps that
pairing: a model's draw and its rival's draw see the same easy and hard items, and the difference
between them no longer carries the items' own spread. That is why the paired interval of a
difference is narrower than the one from two independent intervals, and why rank bands built from
paired draws separate models that independent intervals cannot.

The draws of a task depend only on its name and item count (seeded), never on which models are on
the board: a model's interval does not move when another model arrives.

Tests of a difference: McNemar's test for 0/1 items (accuracy, exact match), exact binomial when
fewer than MCNEMAR_EXACT_BELOW items disagree, chi-square with continuity correction otherwise;
a paired bootstrap test for any other per-item metric.
"""
import math
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DRAWS = 1000
SEED = 20240611
LEVEL = 0.95
MCNEMAR_EXACT_BELOW = 25


@lru_cache(maxsize=256)
def item_weights(task: str, n_items: int, draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """(draws × n_items) resampling weights: row b holds how often draw b picked each item, over n_items.

    `values @ item_weights(...).T` is then every draw's mean at once. Read-only (shared by the cache)."""
    rng = np.random.default_rng([seed, zlib.crc32(task.encode()), n_items])
    picks = rng.integers(0, n_items, size=(draws, n_items))
    flat = (picks + np.arange(draws)[:, None] * n_items).ravel()
    weights = (np.bincount(flat, minlength=draws * n_items).reshape(draws, n_items) / n_items).astype(np.float32)
    weights.setflags(write=False)
    return weights


def item_deviations(items: np.ndarray, task: str, draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """(models × draws): each draw's resampled mean minus the full-sample mean, per model (rows of `items`)."""
    items = np.asarray(items, dtype=np.float32)
    return items @ item_weights(task, items.shape[1], draws, seed).T - items.mean(axis=1, keepdims=True)


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


# ---- tests -----------------------------------------------------------------------------------

def is_binary(*arrays: np.ndarray) -> bool:
    return all(np.isin(np.asarray(a), (0.0, 1.0)).all() for a in arrays)


def _binomial_cdf_half(k: int, n: int) -> float:
    """P(X ≤ k) for X ~ Binomial(n, 1/2), summed in log space (exact enough for any n)."""
    if k >= n:
        return 1.0
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
                 for i in range(k + 1)]
    top = max(log_terms)
    return math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms)


@dataclass(frozen=True)
class McNemar:
    only_a: int
    """items A got right and B wrong"""
    only_b: int
    statistic: float | None
    p_value: float
    exact: bool

    @property
    def name(self) -> str:
        return "McNemar exact" if self.exact else "McNemar chi-square (continuity corrected)"


def mcnemar(only_a: int, only_b: int, exact: bool | None = None) -> McNemar:
    """McNemar's test on the discordant counts. Exact: two-sided binomial test of only_a against
    Binomial(only_a + only_b, 1/2) (as scipy.stats.binomtest and statsmodels' mcnemar(exact=True));
    otherwise chi² = (|only_a − only_b| − 1)² / (only_a + only_b) on one degree of freedom."""
    n = only_a + only_b
    if exact is None:
        exact = n < MCNEMAR_EXACT_BELOW
    if n == 0:
        return McNemar(only_a, only_b, None if exact else 0.0, 1.0, exact)
    if exact:
        return McNemar(only_a, only_b, None, min(1.0, 2 * _binomial_cdf_half(min(only_a, only_b), n)), True)
    statistic = (abs(only_a - only_b) - 1) ** 2 / n
    return McNemar(only_a, only_b, statistic, math.erfc(math.sqrt(statistic / 2)), False)  # chi² sf, 1 df


def bootstrap_p_value(difference: float, draws: np.ndarray) -> float:
    """Two-sided paired-bootstrap p-value of "no difference": how often the draws, shifted to be centred
    on zero, land at least as far from zero as the observed difference."""
    centred = np.abs(draws - draws.mean())
    return float((np.count_nonzero(centred >= abs(difference)) + 1) / (len(draws) + 1))


@dataclass(frozen=True)
class PairedDifference:
    """A − B on one task or aggregate, in the units of its inputs."""
    difference: float
    low: float
    high: float
    test: str
    p_value: float
    items: int | None
    method: str
    """"paired bootstrap over items", or "parametric (stderr)" where a side has no per-item results"""

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict:
        return {"difference": self.difference, "ci": [self.low, self.high], "test": self.test,
                "p_value": self.p_value, "items": self.items, "method": self.method,
                "significant": self.significant}


def paired_items(a: np.ndarray, b: np.ndarray, task: str, *, scale: float = 1.0, draws: int = DRAWS,
                 seed: int = SEED, level: float = LEVEL) -> tuple[PairedDifference, np.ndarray]:
    """A − B from per-item results on the same items (index i is the same item for both), and the draws
    of the difference (×`scale`, e.g. the normalisation's 1/(1 − random)) for aggregating further."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError("paired items need the same non-empty set of items on both sides")
    diff_items = a - b
    observed = float(diff_items.mean()) * scale
    diff_draws = (item_weights(task, len(a), draws, seed).astype(np.float64) @ diff_items) * scale
    low, high = percentile_interval(diff_draws, level)
    if is_binary(a, b):
        test = mcnemar(int(np.count_nonzero((a == 1) & (b == 0))), int(np.count_nonzero((a == 0) & (b == 1))))
        name, p = test.name, test.p_value
    else:
        name, p = "paired bootstrap", bootstrap_p_value(observed, diff_draws)
    return PairedDifference(observed, low, high, name, p, len(a), "paired bootstrap over items"), diff_draws


def parametric(difference: float, stderr_a: float | None, stderr_b: float | None, task: str, *,
               draws: int = DRAWS, seed: int = SEED, level: float = LEVEL) -> tuple[PairedDifference, np.ndarray]:
    """The fallback where per-item results are missing: independent normal errors from the stderrs."""
    spread = math.hypot(stderr_a or 0.0, stderr_b or 0.0)
    z = np.random.default_rng([seed, zlib.crc32(task.encode()), 1]).standard_normal(draws)
    diff_draws = difference + spread * z
    low, high = percentile_interval(diff_draws, level)
    p = math.erfc(abs(difference) / spread / math.sqrt(2)) if spread > 0 else (1.0 if difference == 0 else 0.0)
    return PairedDifference(difference, low, high, "z test (stderr)", p, None, "parametric (stderr)"), diff_draws


def from_draws(difference: float, draws: np.ndarray, method: str, level: float = LEVEL) -> PairedDifference:
    """An aggregate's difference (capability, overall) from its summed draws."""
    low, high = percentile_interval(draws, level)
    return PairedDifference(difference, low, high, "paired bootstrap", bootstrap_p_value(difference, draws),
                            None, method)


def verdict(a: str, b: str, what: str, result: PairedDifference) -> str:
    """Plain words: "A beats B on cognition: +0.06 [0.02, 0.10]"; the winner first, the difference
    positive; no winner when the interval holds zero."""
    def words(d: float, low: float, high: float) -> str:
        return f"{d:+.2f} [{low:.2f}, {high:.2f}]"
    if result.low > 0:
        return f"{a} beats {b} on {what}: {words(result.difference, result.low, result.high)}"
    if result.high < 0:
        return f"{b} beats {a} on {what}: {words(-result.difference, -result.high, -result.low)}"
    return (f"{a} and {b} are not distinguishable on {what}: "
            f"{words(result.difference, result.low, result.high)}")
