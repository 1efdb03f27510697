"""The cold-start curve (issue 21 part 4): test events binned by the target item's training positives strictly
before the event, per-bin means with intervals, and per-bin paired tests with Holm across bins, methods, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.metrics import metric_from_counts
from benchmark.protocols import get_split
from benchmark.registry import get_method
from benchmark.report import curve
from benchmark.report.build import ReportOptions, build_reports
from benchmark.report.events import EventCache, group_trials
from benchmark.store import ResultStore
from benchmark.trial import TrialEnvironment, TrialSpec, run_trial
from tests.conftest import synthetic
from tests.test_report import crafted_store


def _rows(store):
    rows = {k.label: r for k, r in group_trials(store).items()}
    return [rows[m] for m in ("random", "popular", "bpr-mf", "promo")]


def test_bins_means_and_holm_across_bins_methods_and_metrics(tmp_path, monkeypatch):
    store = crafted_store(tmp_path)
    n_prior = np.repeat([0, 1, 2, 4, 8, 15, 30, 80], 25)  # 200 events, every bin filled
    monkeypatch.setattr(curve, "target_counts", lambda row, cache, split, count: n_prior)
    rows = _rows(store)
    cache = EventCache(store)
    c = curve.build_curve(rows, cache, "promo", ["popular", "bpr-mf", "promo"])
    assert c.bins == ["0", "1-2", "3-5", "6-10", "11-20", "21-50", ">50"]
    assert c.n_events == [25, 50, 25, 25, 25, 25, 25]
    for row in rows:
        hr = cache.per_seed(row, "test", "all", "hr@10")
        assert c.cells[(row.key.label, "hr@10", "1-2")][0] == pytest.approx(hr[:, 25:75].mean())
        mean, lo, hi = c.cells[(row.key.label, "hr@10", ">50")]
        assert lo <= mean <= hi
    assert len(c.comparisons) == 2 * 7 * 2  # popular and bpr-mf, 7 bins, 2 metrics; random is not tested
    assert all(x.p_holm is not None and x.p_holm >= x.p for x in c.comparisons)
    assert "Holm-Bonferroni across 28 comparisons" in curve.markdown(c)
    assert "detectable with power 0.8 at alpha (unadjusted; median over comparisons), per bin: 0: " in curve.markdown(c)


def test_the_count_is_training_positives_strictly_before_each_event(tmp_path):
    """Recounted from the split's own training rows: a later training positive of the target never counts."""
    inter = synthetic(n_users=40, n_items=30, n_rows=1500)
    split, _ = get_split(inter, "loo", {"tau": 5, "n_negatives": 10})
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    cls = get_method("popular")
    spec = TrialSpec("popular", cls.version, "test", cls.resolved_defaults("quick"), "", "quick", inter.dataset, "loo",
                     split.hash, 0)
    rec, vectors = run_trial(spec, cls, split, inter, env.device, env=env)
    store = ResultStore(tmp_path / "results")
    store.write(rec, vectors)
    (row,) = group_trials(store).values()
    got = curve.target_counts(row, EventCache(store), "test", "n_prior_pos")
    train, test = split.part("train"), split.part("test")
    pos = train["label"] == 1
    want = [int(np.sum(pos & (train["item"] == i) & (train["time"] < t))) for i, t in zip(test["item"], test["time"])]
    assert got.tolist() == want and max(want) > 0
    later = [int(np.sum(pos & (train["item"] == i))) for i in test["item"]]
    assert later != want  # some targets have training positives after their event: those must not count
    assert np.array_equal(test["cold"], np.asarray(want) < 5)
    # the model's count: every training positive of the target, whatever its time (the tables' cold-model subset)
    assert curve.target_counts(row, EventCache(store), "test", "n_train_pos").tolist() == later
    assert np.array_equal(vectors["test.cold_model"], np.asarray(later) < 5)


def test_report_writes_the_curve_and_skips_it_with_a_note_without_the_split(tmp_path, capsys):
    written = build_reports(crafted_store(tmp_path), tmp_path / "reports", ReportOptions(formats=["md"]))
    assert not any("cold-start-curve" in p.name for p in written)
    assert "no cold-start curve" in capsys.readouterr().err


def test_metric_from_counts_bins_agree_with_stored_vectors(tmp_path, monkeypatch):
    store = crafted_store(tmp_path)
    monkeypatch.setattr(curve, "target_counts", lambda row, cache, split, count: np.zeros(200, dtype=np.int64))
    out = build_reports(store, tmp_path / "reports", ReportOptions(formats=["md"], plots=True))
    names = {p.name for p in out}
    for count in ("model", "event"):
        assert f"loo-paper-test-cold-start-curve-{count}.md" in names
        assert f"loo-paper-test-cold-start-curve-{count}.png" in names
    promo = [r for r in _rows(store) if r.key.label == "promo"][0]
    s = EventCache(store).ranks(promo, "test", "all")
    table = (tmp_path / "reports" / "tables" / "loo-paper-test-cold-start-curve-model.md").read_text()
    assert "the target item's positives in the training rows the model was fit on" in table
    assert f"{np.mean([metric_from_counts('hr@10', a, b).mean() for a, b in s]):.4f}" in table


@pytest.mark.parametrize("test", ["t", "wilcoxon", "seeds", "bootstrap"])
def test_the_curve_uses_the_reports_test(tmp_path, monkeypatch, test):
    """Before issue 36 the curve ran the event t-test whatever --test said."""
    store = crafted_store(tmp_path)
    monkeypatch.setattr(curve, "target_counts", lambda row, cache, split, count: np.repeat(np.arange(8), 25))
    c = curve.build_curve(_rows(store), EventCache(store), "promo", ["popular", "bpr-mf", "promo"], test=test)
    assert c.comparisons and {x.test for x in c.comparisons} == {test}
    from benchmark.report.table import TEST_NAMES

    assert TEST_NAMES[test] in curve.markdown(c)


def test_a_tuned_suite_curve_holds_every_tuned_row(tmp_path, monkeypatch):
    """Before issue 36 ``report --suite S --tuned`` kept only untuned rows in the curve (Random and Popular)."""
    from benchmark.report.build import build_suite_reports
    from tests.test_paper_suite import _write
    from benchmark.suites import PAPER

    store = ResultStore(tmp_path / "results")
    rng = np.random.default_rng(3)
    cold = rng.random(120) < 0.5
    base = rng.random(120)
    for seed in range(3):
        for method in PAPER.methods:
            _write(store, "ml-100k", method, seed, base < 0.5 + 0.03 * seed, cold, variant="tuned=abc12345")
        for method in ("random", "popular"):
            _write(store, "ml-100k", method, seed, base < 0.2, cold)
    monkeypatch.setattr(curve, "target_counts", lambda row, cache, split, count: np.repeat(np.arange(6), 20))
    out = tmp_path / "reports"
    build_suite_reports(store, out, PAPER, ReportOptions(formats=["md"], tuned=True))
    text = (out / "suites" / "paper-tuned" / "loo-paper-test-cold-start-curve-model.md").read_text()
    for label in ("PROMO", "Pre-train", "SASRec", "DropoutNet", "Random", "Popular"):
        assert f"| {label} |" in text, label
