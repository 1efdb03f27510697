"""The ``temporal`` protocol (issue 36): one global timeline, so an item's training positives are what the model
saw of it at every event. Every test here fails before the protocol existed (451d289 had no ``temporal``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmark import metrics as M
from benchmark.errors import BenchError
from benchmark.protocols import PROTOCOLS, temporal
from benchmark.registry import get_method
from benchmark.trial import TrialEnvironment, rank_events
from tests.conftest import synthetic
from tests.test_loo_causal import late_items

PARAMS = temporal.resolve_params({"tau": 5, "n_negatives": 8, "history_len": 6, "feedback_len": 3})


@pytest.fixture(scope="module")
def late():
    inter = late_items()
    return inter, temporal.build(inter, PARAMS)


def _sorted(inter):
    order = np.argsort(inter.time, kind="stable")
    return inter.user[order], inter.item[order], inter.time[order], inter.label[order]


def test_registered_and_runs_every_loo_method():
    assert PROTOCOLS["temporal"] is temporal and temporal.LIKE == "loo"


def test_no_training_row_at_or_after_the_valid_cutoff(late):
    inter, split = late
    t_valid, t_test = split.meta["t_valid"], split.meta["t_test"]
    assert split.part("train")["time"].max() < t_valid
    valid, test = split.part("valid"), split.part("test")
    assert ((valid["time"] >= t_valid) & (valid["time"] < t_test)).all() and (test["time"] >= t_test).all()
    # every training row before T_valid is a training row: nothing in the training period is held back
    assert split.meta["n_train_rows"] == int((inter.time < t_valid).sum())


def test_training_side_arrays_ignore_the_evaluation_period(late):
    """Every array a method can fit on (training rows, their windows, item counts) is unchanged when every row at
    or after T_valid is replaced by random rows: no statistic reads the evaluation period."""
    inter, split = late
    rng = np.random.default_rng(5)
    after = inter.time >= split.meta["t_valid"]
    poisoned = replace(inter, item=np.where(after, rng.integers(0, inter.n_items, len(inter)), inter.item),
                       label=np.where(after, rng.integers(0, 2, len(inter)), inter.label).astype(np.int8))
    other = temporal.build(poisoned, PARAMS)
    for key, value in split.arrays.items():
        if key.startswith(("train/", "item/")):
            assert np.array_equal(value, other.arrays[key]), key
    assert other.meta["parts"]["test"]["n_events"] > 0


def test_exposure_is_the_targets_training_positives(late):
    inter, split = late
    tr = split.part("train")
    counts = np.bincount(tr["item"][tr["label"] == 1], minlength=inter.n_items)
    for part in ("valid", "test"):
        ev = split.part(part)
        assert np.array_equal(ev["n_train_pos"], counts[ev["item"]])
        assert np.array_equal(ev["cold_model"], counts[ev["item"]] < PARAMS["tau"])
    assert np.array_equal(split.arrays["item/train_pos_count"], counts)


def test_events_are_the_periods_positives_of_users_the_model_knows(late):
    inter, split = late
    u, i, t, y = _sorted(inter)
    train_pos = np.bincount(u[(t < split.meta["t_valid"]) & (y == 1)], minlength=inter.n_users)
    first = np.full(inter.n_items, np.iinfo(np.int64).max)
    np.minimum.at(first, i, t)
    test = split.part("test")
    want = np.flatnonzero((t >= split.meta["t_test"]) & (y == 1) & (train_pos[u] >= 1) & (first[i] < t))
    assert np.array_equal(test["place"], want)


def test_candidates_exist_before_the_event_and_validation_ignores_test_rows(late):
    inter, split = late
    u, i, t, y = _sorted(inter)
    for part in ("valid", "test"):
        ev = split.part(part)
        for e in range(len(ev["user"])):
            cand = ev["cand"][e][ev["cand_mask"][e]]
            assert all(((i == c) & (t < ev["time"][e])).any() for c in cand)  # a row of it before the event
            negatives = set(cand[1:].tolist())
            later_limit = split.meta["t_test"] if part == "valid" else np.inf
            known = set(i[(u == ev["user"][e]) & (y == 1) & (t < later_limit)].tolist())
            assert not negatives & known
    # validation's candidates do not move when the test period changes
    rng = np.random.default_rng(9)
    after = inter.time >= split.meta["t_test"]
    poisoned = replace(inter, item=np.where(after, rng.integers(0, inter.n_items, len(inter)), inter.item))
    other = temporal.build(poisoned, PARAMS)
    for key in ("cand", "cand_mask", "fb_pos", "fb_neg", "hist", "n_prior_pos"):
        assert np.array_equal(split.arrays[f"valid/{key}"], other.arrays[f"valid/{key}"]), key


def test_bad_cutoffs_are_one_line_errors():
    with pytest.raises(BenchError, match="valid_start < test_start"):
        temporal.resolve_params({}, {"valid_start": 0.9, "test_start": 0.8})
    inter = synthetic(n_rows=60)
    flat = replace(inter, time=np.full(len(inter), 1000, dtype=np.int64))
    with pytest.raises(BenchError, match="leave a period empty"):
        temporal.build(flat, PARAMS)


def test_training_counts_cannot_beat_causal_popularity_on_cold_for_the_model(ml100k, tmp_path_factory):
    """On loo a scorer of an item's training positives *after* the event reaches cold-at-event HR@10 0.2115 against
    0.1447 for causal popular and 0.0990 chance (perf/cold_exposure.py): other users' later rows are training rows.
    On temporal that scorer is constant (no training row follows an event), so it is at chance, and the scorer of
    all training positives is causal popular itself (0.0646 on the 333 cold-for-the-model test targets)."""
    from tests.conftest import protocol_env

    env: TrialEnvironment = protocol_env(ml100k, "temporal", tmp_path_factory)
    split = env.split
    ev = split.part("test")
    tr = split.part("train")
    whole = np.bincount(tr["item"][tr["label"] == 1], minlength=ml100k.n_items)
    cold = ev["cold_model"]
    assert 300 < cold.sum() < 400 and (ev["n_train_pos"] == 0).sum() > 0
    times = np.broadcast_to(ev["time"][:, None], ev["cand"].shape)
    later = whole[ev["cand"]] * (times < split.meta["t_valid"])  # training positives at or after the event: none
    s, e = M.rank_counts(torch.from_numpy(later.astype(np.float32)), torch.from_numpy(ev["cand_mask"]))
    n_cand = ev["cand_mask"].sum(1)
    chance = M.metric_from_counts("hr@10", np.zeros(len(n_cand), dtype=np.int64), n_cand - 1)
    assert np.allclose(M.metric_from_counts("hr@10", s.numpy(), e.numpy()), chance)
    pop = get_method("popular")
    method = pop(pop.resolved_defaults("paper"), env.context(0, "paper", False))
    method.fit(env.views.train())
    s_pop, e_pop, _ = rank_events(method, env.views.events("test"))
    s_w, e_w = M.rank_counts(torch.from_numpy(whole[ev["cand"]].astype(np.float32)), torch.from_numpy(ev["cand_mask"]))
    hr_pop = M.metric_from_counts("hr@10", s_pop, e_pop)
    hr_whole = M.metric_from_counts("hr@10", s_w.numpy(), e_w.numpy())
    assert np.allclose(hr_whole, hr_pop)
    assert hr_whole[cold].mean() <= hr_pop[cold].mean() + 1e-12
    assert abs(hr_pop[cold].mean() - 0.0646) < 0.001


def test_loo_exposure_counts_the_rows_the_model_was_trained_on():
    from benchmark.protocols import loo

    inter = late_items()
    split = loo.build(inter, loo.resolve_params({"tau": 5, "n_negatives": 8, "history_len": 6, "feedback_len": 3,
                                                 "min_prior_positives": 2}))
    tr = split.part("train")
    counts = np.bincount(tr["item"][tr["label"] == 1], minlength=inter.n_items)
    for part in ("valid", "test"):
        ev = split.part(part)
        assert np.array_equal(ev["n_train_pos"], counts[ev["item"]])
        assert np.array_equal(ev["cold_model"], counts[ev["item"]] < 5)
        assert (ev["n_train_pos"] >= ev["n_prior_pos"] - split.meta["n_context_rows_not_trained"]).all()
