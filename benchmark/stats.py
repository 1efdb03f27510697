"""Paired significance tests over evaluation events, Holm's correction, bootstrap intervals (scipy.stats).

The unit is the evaluation event: a method's per-event values are first averaged over its seeds,
then two methods are compared on exactly the same events. Seeds measure variance (mean ± std),
never the test's sample size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

TESTS = ("t", "wilcoxon", "permutation")
N_RESAMPLES = 10_000
BOOTSTRAP_RESAMPLES = 2_000
SEED = 0
# Per-event differences at most this large are ties: seed means of identical per-seed vectors can differ by
# float rounding (~1e-16), which must never count as a win or feed a test. Metrics here lie in [0, 1] (or are
# log-losses of order 1), so 1e-9 is far below any real difference of one event.
TIE_TOLERANCE = 1e-9


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def paired_pvalue(a: np.ndarray, b: np.ndarray, test: str = "t", seed: int = SEED,
                  n_resamples: int = N_RESAMPLES) -> float:
    """Two-sided p-value of H0: mean(a - b) = 0 (median for Wilcoxon). Identical inputs give 1.0."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not np.any(diff):
        return 1.0
    if test == "t":
        p = stats.ttest_rel(a, b).pvalue
    elif test == "wilcoxon":
        p = stats.wilcoxon(a, b, zero_method="wilcox").pvalue
    else:  # sign-flip permutation of the paired differences; scipy adds +1 to both counts
        p = stats.permutation_test((diff,), _mean, permutation_type="samples", n_resamples=n_resamples,
                                   alternative="two-sided", vectorized=True, random_state=seed).pvalue
    return 1.0 if np.isnan(p) else float(min(p, 1.0))


def min_pvalue(test: str, n_nonzero: int, n_resamples: int = N_RESAMPLES) -> float:
    """The smallest two-sided p-value the test can produce with this many non-zero paired differences."""
    if n_nonzero < 2:
        return 1.0
    exact = 2.0 / 2.0 ** min(n_nonzero, 1000)
    if test == "wilcoxon":
        return exact
    if test == "permutation":
        return max(exact, 2.0 / (n_resamples + 1)) if 2 ** min(n_nonzero, 60) > n_resamples else exact
    return 0.0  # the t-test's p-value is continuous


def holm(pvalues: list[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def bootstrap_ci(diff: np.ndarray, seed: int = SEED, confidence: float = 0.95,
                 n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean paired difference, resampling events."""
    diff = np.asarray(diff, dtype=np.float64)
    if len(diff) < 2 or np.all(diff == diff[0]):
        return float(diff.mean()), float(diff.mean())
    res = stats.bootstrap((diff,), _mean, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", vectorized=True, random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass
class Comparison:
    """One paired comparison: ``a`` (usually the reference) against ``b`` on one metric and one set of events."""

    a: str
    b: str
    metric: str
    n_events: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    rel_improvement: float | None  # (a - b) / b in %, None when b is 0
    wins: int
    ties: int
    losses: int
    test: str
    p: float
    min_p: float
    testable: bool  # False when the test cannot reach alpha with these events
    identical: bool = False  # every per-event difference is a tie: nothing to test
    p_holm: float | None = None
    significant: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def compare(a_name: str, b_name: str, metric: str, a: np.ndarray, b: np.ndarray, test: str = "t",
            alpha: float = 0.05, higher_is_better: bool = True) -> Comparison:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{a_name} and {b_name} have different numbers of events ({len(a)} vs {len(b)})")
    diff = a - b
    diff[np.abs(diff) <= TIE_TOLERANCE] = 0.0  # rounding noise is a tie (TIE_TOLERANCE)
    b = a - diff
    sign = 1.0 if higher_is_better else -1.0
    n_nonzero = int(np.count_nonzero(diff))
    mp = min_pvalue(test, n_nonzero)
    lo, hi = bootstrap_ci(diff)
    mb = float(b.mean())
    return Comparison(
        a=a_name, b=b_name, metric=metric, n_events=len(a), mean_a=float(a.mean()), mean_b=mb,
        diff=float(diff.mean()), ci_low=lo, ci_high=hi,
        rel_improvement=float(100.0 * diff.mean() / mb) if mb != 0 else None,
        wins=int(np.sum(sign * diff > 0)), ties=int(np.sum(diff == 0)), losses=int(np.sum(sign * diff < 0)),
        test=test, p=paired_pvalue(a, b, test), min_p=mp, testable=mp <= alpha and n_nonzero > 0,
        identical=n_nonzero == 0)


def apply_holm(comparisons: list[Comparison], alpha: float = 0.05) -> None:
    """Holm across every testable comparison of one table; untestable ones are never significant."""
    testable = [c for c in comparisons if c.testable]
    for c, p in zip(testable, holm([c.p for c in testable])):
        c.p_holm = float(p)
        c.significant = bool(p < alpha)
