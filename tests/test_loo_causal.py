"""``loo`` version 3: causal cold flags, one existence rule for every candidate, the causal popularity of
``popular`` and PROMO's causal per-row flags. Each test fails on version 2 (issue 16, part 1)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from benchmark import metrics as M
from benchmark.data.interactions import Interactions
from benchmark.method import Method, TrainData
from benchmark.protocols import get_split, loo
from benchmark.trial import rank_events
from benchmark.views import SplitViews
from tests.conftest import synthetic
from tests.test_trials import _ctx

PARAMS = loo.resolve_params({"tau": 5, "n_negatives": 8, "history_len": 6, "feedback_len": 3})


def late_items(seed: int = 0, n_users: int = 30, n_items: int = 40, n_rows: int = 1200) -> Interactions:
    """Items enter the catalogue over time (item k's rows start near time 1000 + 25 k), so early events meet
    items that do not exist yet and some positives are an item's first interaction."""
    base = synthetic(n_users=n_users, n_items=n_items, n_rows=n_rows, seed=seed)
    rng = np.random.default_rng(seed + 100)
    # each user rates items near its own place in the catalogue's history, so users' events are spread in time
    item = np.clip(np.round(base.user * n_items / n_users + rng.normal(0, 4, n_rows)), 0, n_items - 1).astype(np.int64)
    time = 1000 + item * 25 + rng.integers(0, 60, n_rows)
    return Interactions(dataset=base.dataset, user=base.user, item=item, time=time.astype(np.int64),
                        value=base.value, label=base.label, user_ids=base.user_ids, item_ids=base.item_ids,
                        user_features=base.user_features, item_features=base.item_features,
                        user_feature_names=base.user_feature_names, item_feature_names=base.item_feature_names,
                        source="synthetic-late-items")


def _order(inter):
    order = np.argsort(inter.time, kind="stable")
    return inter.user[order], inter.item[order], inter.time[order], inter.label[order]


def _validation_times(inter) -> tuple[np.ndarray, np.ndarray]:
    u, i, t, y = _order(inter)
    items, times = [], []
    for user in range(inter.n_users):
        p = np.flatnonzero((u == user) & (y == 1))
        if len(p) >= 3:
            items.append(i[p[-2]])
            times.append(t[p[-2]])
    return np.array(items), np.array(times)


@pytest.fixture(scope="module")
def late():
    inter = late_items()
    return inter, loo.build(inter, PARAMS)


def test_cold_flag_counts_training_positives_strictly_before_the_event(late):
    inter, split = late
    tr = split.part("train")
    pos = tr["label"] == 1
    differs = 0
    for part in ("valid", "test"):
        ev = split.part(part)
        naive = np.array([((tr["item"][pos] == it) & (tr["time"][pos] < tt)).sum()
                          for it, tt in zip(ev["item"], ev["time"])])
        np.testing.assert_array_equal(ev["n_prior_pos"], naive)
        np.testing.assert_array_equal(ev["cold"], naive < PARAMS["tau"])
        whole = np.bincount(tr["item"][pos], minlength=inter.n_items)[ev["item"]] < PARAMS["tau"]
        np.testing.assert_array_equal(ev["tail"], whole)  # the whole-period flag survives only as "tail"
        differs += int((ev["cold"] != whole).sum())
        assert split.meta["parts"][part]["n_cold_targets"] == int(ev["cold"].sum())
        # candidates' flags (the score-distribution plot) are causal too
        for e in range(0, len(ev["user"]), 5):
            c = ev["cand"][e][ev["cand_mask"][e]]
            cnt = np.array([((tr["item"][pos] == x) & (tr["time"][pos] < ev["time"][e])).sum() for x in c])
            np.testing.assert_array_equal(ev["cand_cold"][e][ev["cand_mask"][e]], cnt < PARAMS["tau"])
    assert differs > 0, "the fixture must tell the causal flag from the whole-period one"


def test_the_positive_and_the_negatives_obey_one_existence_rule(late):
    inter, split = late
    u, i, t, y = _order(inter)
    tr = split.part("train")
    first = np.full(inter.n_items, np.iinfo(np.int64).max)
    np.minimum.at(first, tr["item"], tr["time"])
    vi, vt = _validation_times(inter)
    first_test = first.copy()
    np.minimum.at(first_test, vi, vt)
    for part, f in (("valid", first), ("test", first_test)):
        ev = split.part(part)
        cand, mask = ev["cand"], ev["cand_mask"]
        assert np.all(f[cand[mask]] < np.broadcast_to(ev["time"][:, None], cand.shape)[mask])
        # every event the rule leaves out is counted, and the fixture has some (so the rule is tested)
        n_users = int(np.sum(np.bincount(u[y == 1], minlength=inter.n_users) >= 3))
        dropped = split.meta["parts"][part]["n_events_positive_not_existing"]
        assert dropped > 0 and dropped + len(ev["user"]) == n_users
    # the negative pool is restricted too: drawing from every item would take items that do not exist yet
    every = loo.build(inter, dict(PARAMS, candidates="all"))
    ev = every.part("test")
    assert (first_test[ev["cand"][:, 1:]] >= ev["time"][:, None]).any()


class EmptyWindows(Method):
    """Scores a candidate 1 when both its feedback windows are empty: it can only win through how candidates
    are drawn, never through the data (feedback length would be popularity, a legitimate signal)."""

    name = "empty-windows"

    def fit(self, data: TrainData) -> dict[str, Any]:
        return {}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return (~(batch["fb_pos_mask"].any(-1) | batch["fb_neg_mask"].any(-1))).float()


def _empty_scorer_gap(inter, split) -> dict[tuple[str, str, str], float]:
    views = SplitViews(split, inter, torch.device("cpu"))
    gaps = {}
    for part in ("valid", "test"):
        events = views.events(part)
        s, e, _ = rank_events(EmptyWindows({}, _ctx()), events)
        cold = events.numpy("cold")
        for metric in ("hr@5", "hr@10", "mrr"):
            got = M.metric_from_counts(metric, s, e)
            chance = M.metric_from_counts(metric, np.zeros_like(s), events.numpy("cand_mask").sum(1) - 1)
            for subset, sel in (("all", np.ones_like(cold)), ("cold", cold), ("warm", ~cold)):
                if sel.any():
                    gaps[(part, subset, metric)] = float(got[sel].mean() - chance[sel].mean())
    return gaps


def test_an_empty_windows_scorer_is_at_chance_on_every_subset(late):
    gaps = _empty_scorer_gap(*late)
    assert max(abs(g) for g in gaps.values()) < 1e-9, gaps


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_an_empty_windows_scorer_is_at_chance_on_real_ml100k(ml100k, tmp_path, monkeypatch):
    """Version 2 gave it test cold-target HR@10 0.1338 against 0.0990 chance."""
    monkeypatch.setenv("PROMO_BENCH_CACHE", str(tmp_path))
    split, _ = get_split(ml100k, "loo")
    gaps = _empty_scorer_gap(ml100k, split)
    assert max(abs(g) for g in gaps.values()) < 1e-9, gaps


def test_release_sample_filter_drops_samples_but_keeps_their_context():
    inter = synthetic(seed=4)
    base = loo.build(inter, PARAMS)
    filt = loo.build(inter, dict(PARAMS, min_prior_positives=3))
    u, i, t, y = _order(inter)
    tr = filt.part("train")
    earlier = np.array([np.sum((u == u[p]) & (y == 1) & (t < t[p])) for p in tr["place"]])  # strictly earlier times
    assert earlier.min() >= 3
    assert filt.meta["n_context_rows_not_trained"] == len(base.part("train")["user"]) - len(tr["user"]) > 0
    for name in ("valid/hist", "valid/fb_pos", "test/hist", "test/cand", "valid/cold", "item/train_pos_count"):
        np.testing.assert_array_equal(filt.arrays[name], base.arrays[name])


def test_promo_pape_reads_each_training_row_as_of_its_own_time(monkeypatch):
    """L_pape's cold positives and warm negatives: cold means < tau training positives before the row's time."""
    import methods.promo as promo_mod
    from benchmark.registry import get_method
    from benchmark.trial import TrialEnvironment, run_trial
    from tests.test_trials import spec_for

    inter = synthetic(n_users=40, n_items=60, n_rows=1500, seed=2)
    split = loo.build(inter, loo.resolve_params({"tau": 5, "n_negatives": 20, "history_len": 8}))
    seen: list[int] = []
    real = promo_mod.pape

    def recording(logits, labels, cold):
        if logits.requires_grad:  # training batches only
            seen.append(int(cold.sum()))
        return real(logits, labels, cold)

    monkeypatch.setattr(promo_mod, "pape", recording)
    spec = spec_for("promo", split, epochs=1, patience=1)
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    rec, _ = run_trial(spec, get_method("promo"), split, inter, torch.device("cpu"), env=env)
    assert rec["status"] == "ok", rec.get("traceback")
    tr = split.part("train")
    pos = tr["label"] == 1
    causal = np.array([((tr["item"][pos] == it) & (tr["time"][pos] < tt)).sum() for it, tt in zip(tr["item"], tr["time"])])
    whole = np.bincount(tr["item"][pos], minlength=inter.n_items)[tr["item"]]
    assert (causal < 5).sum() != (whole < 5).sum()
    assert sum(seen) == int((causal < 5).sum()), "one epoch visits every row once"


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_ml100k_loo_v3_regression_pins(ml100k, tmp_path, monkeypatch):
    """Real, deterministic numbers (docs/protocols.md, docs/methods/popular.md; `python perf/loo_figures.py`): a
    silent change of the split or of `popular` shows here."""
    from benchmark.registry import get_method
    from benchmark.trial import TrialSpec, run_trial

    monkeypatch.setenv("PROMO_BENCH_CACHE", str(tmp_path))
    split, _ = get_split(ml100k, "loo")
    parts = split.meta["parts"]
    assert (parts["test"]["n_events"], parts["test"]["n_cold_targets"], parts["test"]["n_tail_targets"]) == (928, 576, 349)
    assert (parts["valid"]["n_events"], parts["valid"]["n_cold_targets"]) == (933, 557)
    assert (parts["test"]["n_events_positive_not_existing"], parts["valid"]["n_events_positive_not_existing"]) == (14, 9)
    assert parts["test"]["n_histories_with_own_valid_item"] == 625
    cls = get_method("popular")
    got = {}
    for count in ("causal", "whole"):
        spec = TrialSpec("popular", cls.version, "test", {"count": count}, "", "paper", "ml-100k", "loo", split.hash, 0)
        rec, _ = run_trial(spec, cls, split, ml100k, torch.device("cpu"))
        got[count] = {k: round(v["hr@10"], 6) for k, v in rec["metrics"]["test"].items()}
    # cold for the model (training positives) and at the event (training positives before it): issue 36
    assert parts["test"]["n_cold_model_targets"] == 349
    assert got["causal"] == {"all": 0.407687, "cold-event": 0.144676, "warm-event": 0.838068,
                             "cold-model": 0.005731, "warm-model": 0.649971}
    assert got["whole"] == {"all": 0.420797, "cold-event": 0.163194, "warm-event": 0.84233,
                            "cold-model": 0.002865, "warm-model": 0.672712}
