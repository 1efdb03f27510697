"""Paired significance tests, Holm's correction, bootstrap intervals, effect sizes and the minimum detectable
effect (scipy.stats).

Two families of test, chosen per table (``report --test``):
- event tests (``t``, ``wilcoxon``, ``permutation``): a method's per-event values are averaged over its seeds,
  then two methods are compared on exactly the same events. Seed-to-seed variance never enters them: they ask
  whether these trained models differ on these events, not whether the methods would differ on a retraining.
- seed-aware tests, which answer the second question:
  ``seeds``: a paired t-test over seeds on the per-seed differences of event means (seed s of one method against
  seed s of the other; both rows need the same seeds). Its sample size is the number of seeds, so it needs 5 or
  more to have any power (the minimum detectable effect says how much).
  ``bootstrap``: a hierarchical bootstrap (seeds of each method resampled, then events, the same events for both),
  whose standard error of the mean difference carries both sources of variance; the p-value is the Wald test's,
  2 * Phi(-|diff| / SE). It works from 2 seeds but its seed variance is then a poor estimate. Seeds and events are
  crossed (every seed is scored on every event), and resampling both independently counts the seed x event
  interaction more than once (Owen 2007, "The pigeonhole bootstrap"), so its SE is too large, not too small, when
  per-event noise dominates: up to about sqrt(3) times the true one when all variance is interaction. It errs towards
  fewer marks, never towards false ones; tests/test_seed_statistics.py checks both directions on simulations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from scipy.integrate import quad
from scipy.optimize import brentq

EVENT_TESTS = ("t", "wilcoxon", "permutation")
SEED_TESTS = ("seeds", "bootstrap")
TESTS = EVENT_TESTS + SEED_TESTS
POWER = 0.8  # of the minimum detectable effect
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
    testable: bool  # False when the test cannot reach alpha with these events (or seeds)
    identical: bool = False  # every per-event difference is a tie: nothing to test
    p_holm: float | None = None
    significant: bool = False
    n_seeds: int = 0  # seeds in the test (seed-aware tests), or averaged before it (event tests)
    se: float | None = None  # standard error of ``diff`` under the test's model
    df: float | None = None  # its degrees of freedom (None: normal)
    effect: float | None = None  # standardised mean difference d_z = diff / sd over the test's unit
    reason: str = ""  # why a comparison is not testable, when it is not for lack of events
    mde: float | None = None  # minimum detectable effect at alpha and power POWER, given ``se`` and ``df``

    def to_dict(self) -> dict:
        return asdict(self)


def _as_seeds(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[None, :] if x.ndim == 1 else x


def hierarchical_bootstrap_se(a: np.ndarray, b: np.ndarray, seed: int = SEED,
                              n_resamples: int = BOOTSTRAP_RESAMPLES) -> float:
    """Standard deviation of the mean difference over resamples that draw each method's seeds with replacement and
    then the events with replacement (the same events for both: the comparison stays paired on events).

    A resample's mean is a weighted sum: seed counts w (multinomial over seeds) and event counts v (multinomial over
    events) give w @ X @ v / (S * E), so no resampled array is ever built."""
    rng = np.random.default_rng(seed)
    n_events = a.shape[1]
    stats_ = np.empty(n_resamples)
    chunk = max(1, min(n_resamples, 2_000_000 // max(n_events, 1)))
    for lo in range(0, n_resamples, chunk):
        n = min(chunk, n_resamples - lo)
        v = _counts(rng, n, n_events)
        means = []
        for x in (a, b):
            w = _counts(rng, n, len(x))
            means.append(np.sum((w @ x) * v, axis=1) / (len(x) * n_events))
        stats_[lo:lo + n] = means[0] - means[1]
    return float(stats_.std(ddof=1))


def hierarchical_bootstrap_cis(arrays: list[np.ndarray], seed: int = SEED, confidence: float = 0.95,
                               n_resamples: int = 1000) -> list[tuple[float, float]]:
    """Percentile intervals of the mean of each (n_seeds, n_events) array, resampling seeds with replacement and
    then events with replacement, so both retraining and event variance are in the interval (a figure's error bars
    must say which they carry). The arrays must share their seeds and events (one method's curve over K): they share
    one set of resample weights, so the bands stay coherent across the curve.

    Each interval is widened, where needed, to contain the array's mean: figures draw it as distances from that mean,
    and for a row that does not vary (a deterministic method's constant subset) the resampled means equal the mean
    only up to rounding (2.8e-17 below it in the first ``run --all`` that drew them, which made matplotlib refuse
    the negative error bar and ended the run's report)."""
    if not arrays:
        return []
    first = _as_seeds(arrays[0])
    n_seeds, n_events = first.shape
    rng = np.random.default_rng(seed)
    w = _counts(rng, n_resamples, n_seeds)
    xs = [_as_seeds(x) for x in arrays]
    means = np.zeros((len(xs), n_resamples))
    # the event resamples in blocks of about 2^24 counts: one (resamples x events) float64 matrix is 2.2 GB at
    # KuaiRand scale (270k events), and the report peaked at 8.7 GiB; the blocks draw the same stream, in order
    block = max(1, BOOT_BLOCK // max(1, n_events))
    for a in range(0, n_resamples, block):
        v = _counts(rng, min(block, n_resamples - a), n_events)
        for j, x in enumerate(xs):
            if x.size:
                means[j, a:a + len(v)] = np.sum((w[a:a + len(v)] @ x) * v, axis=1) / (n_seeds * n_events)
    tail = (1 - confidence) / 2 * 100
    out = []
    for j, x in enumerate(xs):
        if x.size == 0:
            out.append((float("nan"), float("nan")))
            continue
        lo, hi = np.percentile(means[j], [tail, 100 - tail])
        point = float(x.mean())
        out.append((min(float(lo), point), max(float(hi), point)))
    return out


BOOT_BLOCK = 1 << 24  # event-resample counts held at once by hierarchical_bootstrap_cis (128 MiB of float64)


def _counts(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n resamples of k items with replacement, as counts per item (n x k)."""
    draws = rng.integers(0, k, (n, k)) + (np.arange(n) * k)[:, None]
    return np.bincount(draws.ravel(), minlength=n * k).reshape(n, k).astype(np.float64)


def _t_p(diff_mean: float, se: float, df: float | None) -> float:
    if se <= 0:
        return 0.0 if diff_mean != 0 else 1.0
    z = abs(diff_mean) / se
    return float(2 * (stats.t.sf(z, df) if df is not None else stats.norm.sf(z)))


def compare(a_name: str, b_name: str, metric: str, a: np.ndarray, b: np.ndarray, test: str = "t",
            alpha: float = 0.05, higher_is_better: bool = True, seeds_a: list[int] | None = None,
            seeds_b: list[int] | None = None) -> Comparison:
    """``a`` and ``b`` are per-event vectors (seed means) or per-seed arrays (seeds x events); the seed-aware tests
    need the latter. ``seeds_a``/``seeds_b`` name the rows of each for the ``seeds`` test's pairing."""
    out = _compare(a_name, b_name, metric, a, b, test, alpha, higher_is_better, seeds_a, seeds_b)
    if out.se is not None and out.se > 0:
        out.mde = minimum_detectable_effect(out.se, out.df, alpha)
    return out


def _compare(a_name: str, b_name: str, metric: str, a: np.ndarray, b: np.ndarray, test: str, alpha: float,
             higher_is_better: bool, seeds_a: list[int] | None, seeds_b: list[int] | None) -> Comparison:
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")
    a_s, b_s = _as_seeds(a), _as_seeds(b)
    if a_s.shape[1] != b_s.shape[1]:
        raise ValueError(f"{a_name} and {b_name} have different numbers of events ({a_s.shape[1]} vs {b_s.shape[1]})")
    a, b = a_s.mean(axis=0), b_s.mean(axis=0)
    diff = a - b
    diff[np.abs(diff) <= TIE_TOLERANCE] = 0.0  # rounding noise is a tie (TIE_TOLERANCE)
    b = a - diff
    sign = 1.0 if higher_is_better else -1.0
    n_nonzero = int(np.count_nonzero(diff))
    lo, hi = bootstrap_ci(diff)
    mb = float(b.mean())
    out = Comparison(
        a=a_name, b=b_name, metric=metric, n_events=len(a), mean_a=float(a.mean()), mean_b=mb,
        diff=float(diff.mean()), ci_low=lo, ci_high=hi,
        rel_improvement=float(100.0 * diff.mean() / mb) if mb != 0 else None,
        wins=int(np.sum(sign * diff > 0)), ties=int(np.sum(diff == 0)), losses=int(np.sum(sign * diff < 0)),
        test=test, p=1.0, min_p=1.0, testable=False, identical=n_nonzero == 0,
        n_seeds=min(len(a_s), len(b_s)))
    if test in EVENT_TESTS:
        out.p, out.min_p = paired_pvalue(a, b, test), min_pvalue(test, n_nonzero)
        out.testable = out.min_p <= alpha and n_nonzero > 0
        if len(diff) > 1 and diff.std(ddof=1) > 0:
            sd = float(diff.std(ddof=1))
            out.se, out.df, out.effect = sd / np.sqrt(len(diff)), float(len(diff) - 1), out.diff / sd
        return out
    if test == "seeds":
        if seeds_a is not None and seeds_b is not None and list(seeds_a) != list(seeds_b):
            out.reason = (f"the seeds test pairs seed with seed, and the rows have different seeds "
                          f"({_names(seeds_a)} against {_names(seeds_b)})")
            return out
        if len(a_s) != len(b_s) or len(a_s) < 2:
            out.reason = f"the seeds test needs 2 or more seeds in both rows ({len(a_s)} and {len(b_s)})"
            return out
        d = a_s.mean(axis=1) - b_s.mean(axis=1)
        d[np.abs(d) <= TIE_TOLERANCE] = 0.0
        out.min_p, out.testable = 0.0, bool(np.any(d)) and not out.identical
        sd = float(d.std(ddof=1))
        out.df = float(len(d) - 1)
        out.se = sd / np.sqrt(len(d))
        out.effect = float(d.mean() / sd) if sd > 0 else None
        out.p = _t_p(float(d.mean()), out.se, out.df) if out.testable else 1.0
        return out
    # bootstrap
    if len(a_s) < 2 or len(b_s) < 2:
        out.reason = f"the hierarchical bootstrap needs 2 or more seeds in both rows ({len(a_s)} and {len(b_s)})"
        return out
    out.min_p, out.testable = 0.0, not out.identical
    out.se = hierarchical_bootstrap_se(a_s, b_s)
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    out.effect = out.diff / sd if sd > 0 else None
    out.p = _t_p(out.diff, out.se, None) if out.testable else 1.0
    return out


def _names(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds))


def minimum_detectable_effect(se: float, df: float | None, alpha: float = 0.05, power: float = POWER) -> float:
    """The true mean difference a two-sided test at ``alpha`` detects with probability ``power``, given the standard
    error of the estimate: the noncentral t (normal when ``df`` is None) solved for its noncentrality."""
    if se <= 0 or not np.isfinite(se):
        return 0.0
    if df is None:
        return float((stats.norm.isf(alpha / 2) + stats.norm.isf(1 - power)) * se)
    crit = stats.t.isf(alpha / 2, df)

    def shortfall(delta: float) -> float:
        return _t_power(delta, df, crit) - power

    hi = 1.0
    while shortfall(hi) < 0:
        hi *= 2
    return float(brentq(shortfall, 0.0, hi, xtol=1e-6) * se)


def _t_power(delta: float, df: float, crit: float) -> float:
    """P(|T| > crit) for T noncentral t(df, delta). scipy's nct loses its tail (NaN) for few degrees of freedom and
    a large critical value (2 seeds at alpha / m); then integrate over the chi-square of the denominator."""
    p = float(stats.nct.sf(crit, df, delta) + stats.nct.cdf(-crit, df, delta))
    if np.isfinite(p):
        return p

    def integrand(v: float) -> float:
        scale = crit * np.sqrt(v / df)
        return float((stats.norm.sf(scale - delta) + stats.norm.cdf(-scale - delta)) * stats.chi2.pdf(v, df))

    lo, hi = stats.chi2.ppf(1e-12, df), stats.chi2.isf(1e-12, df)  # where the chi-square's mass is
    return float(quad(integrand, lo, hi, points=[max(df - 2, lo)], limit=200)[0])


def apply_holm(comparisons: list[Comparison], alpha: float = 0.05) -> None:
    """Holm across every testable comparison of one table; untestable ones are never significant."""
    testable = [c for c in comparisons if c.testable]
    for c, p in zip(testable, holm([c.p for c in testable])):
        c.p_holm = float(p)
        c.significant = bool(p < alpha)
