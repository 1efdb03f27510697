"""Seed-aware significance (issue 19 part 4): tests that carry seed-to-seed variance, effect sizes and the minimum
detectable effect. The null simulations are the point: a test that ignores seed variance rejects a true null far
more often than alpha when retraining moves the metric, and the seed-aware tests must not."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as st

from benchmark.report import render
from benchmark.stats import compare, minimum_detectable_effect
from tests.test_report import table_for, write_trial
from benchmark.store import ResultStore


def _trials(rng: np.random.Generator, p: np.ndarray, seeds: int, seed_sd: float) -> np.ndarray:
    """Per-event hits of one method retrained ``seeds`` times: each retraining shifts every event's hit
    probability by one seed effect (the part of the variance an event test never sees)."""
    shift = rng.normal(0.0, seed_sd, size=(seeds, 1))
    return (rng.random((seeds, len(p))) < np.clip(p + shift, 0, 1)).astype(np.float64)


def test_event_tests_over_reject_a_true_null_that_seed_aware_tests_hold():
    rng = np.random.default_rng(7)
    n_events, seeds, reps, alpha = 300, 5, 60, 0.05
    rejected = {"t": 0, "seeds": 0, "bootstrap": 0}
    for _ in range(reps):
        p = rng.uniform(0.1, 0.7, n_events)  # the same events, the same true method quality for both
        a, b = _trials(rng, p, seeds, 0.08), _trials(rng, p, seeds, 0.08)
        for test in rejected:
            c = compare("a", "b", "hr@10", a, b, test, alpha, seeds_a=list(range(seeds)), seeds_b=list(range(seeds)))
            rejected[test] += c.p < alpha
    rate = {k: v / reps for k, v in rejected.items()}
    assert rate["t"] > 0.3, rate  # seed variance is invisible to it: false positives
    assert rate["seeds"] <= 0.15 and rate["bootstrap"] <= 0.15, rate  # alpha = 0.05; 60 replicates


def test_seed_aware_tests_still_find_a_real_difference():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 0.7, 400)
    a, b = _trials(rng, p + 0.15, 5, 0.01), _trials(rng, p, 5, 0.01)
    for test in ("seeds", "bootstrap"):
        c = compare("a", "b", "hr@10", a, b, test, seeds_a=list(range(5)), seeds_b=list(range(5)))
        assert c.testable and c.p < 1e-3 and c.effect is not None and c.effect > 0, (test, c)


def test_seeds_test_pairs_seed_with_seed_and_says_why_it_cannot():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 50)), rng.random((3, 50))
    c = compare("a", "b", "hr@10", a, b, "seeds", seeds_a=[0, 1, 2], seeds_b=[0, 1, 3])
    assert not c.testable and "different seeds" in c.reason
    c = compare("a", "b", "hr@10", a[:1], b[:1], "seeds", seeds_a=[0], seeds_b=[0])
    assert not c.testable and "2 or more seeds" in c.reason
    c = compare("a", "b", "hr@10", a, b, "seeds", seeds_a=[0, 1, 2], seeds_b=[0, 1, 2])
    expected = st.ttest_rel(a.mean(axis=1), b.mean(axis=1)).pvalue
    assert c.testable and c.p == pytest.approx(expected) and c.df == 2 and c.n_seeds == 3


def test_minimum_detectable_effect_has_the_power_it_claims():
    assert minimum_detectable_effect(1.0, None) == pytest.approx(st.norm.isf(0.025) + st.norm.isf(0.2))
    assert minimum_detectable_effect(1.0, 1e7) == pytest.approx(minimum_detectable_effect(1.0, None), rel=1e-4)
    # a Holm-strict level with many events: scipy's noncentral t has NaN holes there, and a careless fallback
    # integral once put this at 6.93 standard errors instead of the normal's 4.35
    strict = 0.05 / 112
    assert minimum_detectable_effect(1.0, 927, strict) == pytest.approx(minimum_detectable_effect(1.0, None, strict),
                                                                         rel=0.01)
    # five seeds: simulate the seeds test at its own minimum detectable effect; it must reject ~80 % of the time
    rng = np.random.default_rng(1)
    sd, n = 0.02, 5
    delta = minimum_detectable_effect(sd / np.sqrt(n), n - 1)
    diffs = rng.normal(delta, sd, size=(20_000, n))
    power = np.mean(st.ttest_1samp(diffs, 0.0, axis=1).pvalue < 0.05)
    assert power == pytest.approx(0.8, abs=0.015)


def _seeded_store(tmp_path, seeds_of_popular=(0, 1, 2)) -> ResultStore:
    rng = np.random.default_rng(0)
    store = ResultStore(tmp_path / "results")
    n = 200
    cold = rng.random(n) < 0.4
    base = rng.random(n)
    for seed in range(3):
        write_trial(store, "promo", seed, (base < 0.8) ^ (rng.random(n) < 0.05), cold)
    for seed in seeds_of_popular:
        write_trial(store, "popular", seed, (base < 0.6) ^ (rng.random(n) < 0.05), cold)
    return store


@pytest.mark.parametrize("test, words", [("t", "seed-to-seed variance is not in the test"),
                                         ("seeds", "t-test over seeds"),
                                         ("bootstrap", "hierarchical bootstrap standard error")])
def test_caption_names_the_test_and_the_detectable_difference(tmp_path, test, words):
    table = table_for(_seeded_store(tmp_path), test=test)
    caption = table.caption()
    assert words in caption and "power 0.8" in caption and "HR@10" in caption.split("power 0.8")[1]
    lo, hi = table.detectable["hr@10"]
    assert 0 < lo < hi  # alpha / m is stricter than alpha
    payload = json.loads(render.as_json(table))
    assert all(c["effect"] is not None and c["se"] > 0 and c["mde"] > 0 for c in payload["comparisons"])


def test_a_table_names_comparisons_the_seeds_test_cannot_pair(tmp_path):
    table = table_for(_seeded_store(tmp_path, seeds_of_popular=(0, 1, 5)), test="seeds")
    assert not any(c.testable for c in table.comparisons)
    assert any("different seeds" in n and "not marked" in n for n in table.notes)
