"""The ``temporal`` protocol: one timeline for every user, so "cold" means cold for the model (docs/protocols.md).

Under ``loo`` each user's training rows end at that user's own validation event, so a model trains on other users'
rows after an event and an item that was cold at the event may be warm for the model (Ji et al., TOIS 2023). Here
two global cutoffs split the log: training rows are every row before ``T_valid``; validation events are the
positives in ``[T_valid, T_test)``, test events the positives at or after ``T_test``. No training row is at or
after ``T_valid``, so an item's positives in the training rows are what the model has seen of it at every event.

Everything else follows ``loo`` (its helpers, so the two cannot drift): causal windows strictly before each event,
one existence rule for the positive and the negatives, 100 negatives drawn once, optional sampled training
negatives. The evaluation-period rows before an event are its *context* (windows, existence), never training rows:
the model is frozen at ``T_valid`` and served with the interactions logged since, as a deployed model is, which is
the setting PROMO's prompts are built for (feedback that arrives after training).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.data.interactions import Interactions
from benchmark.errors import BenchError
from benchmark.identity import protocol_code_hash
from benchmark.protocols import loo, windows
from benchmark.protocols.loo import _CountBefore, _draw_candidates, _window_maker, _with_train_negatives, exposure
from benchmark.protocols.params import identity_hash, merge
from benchmark.protocols.split import PARTS, Split

NAME = "temporal"
VERSION = "1"
EVALUATION = "sampled"
IMPLICIT = False
VALID_METRIC = "hr@10"
PROVIDES = frozenset({"history", "feedback"})
LIKE = "loo"  # every method that runs on loo runs here: the arrays and their meaning are loo's
DEFAULTS: dict[str, Any] = {"tau": 50, "n_negatives": 100, "valid_start": 0.8, "test_start": 0.9,
                            "min_user_train_pos": 1, "history_len": 50, "feedback_len": 10, "train_negatives": 0,
                            "split_seed": 0}


def resolve_params(card_defaults: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``merge`` checks types and the name-implied ranges (tau, n_*, *_len at least 1; min_* at least 0)."""
    params = merge(NAME, DEFAULTS, card_defaults, overrides)
    if not 0 < params["valid_start"] < params["test_start"] < 1:
        raise BenchError(f"temporal protocol: need 0 < valid_start < test_start < 1, got valid_start="
                         f"{params['valid_start']}, test_start={params['test_start']}")
    if params["train_negatives"] < 0:
        raise BenchError(f"temporal protocol: train_negatives must be at least 0, got {params['train_negatives']}")
    return params


def split_hash(interactions_hash: str, params: dict[str, Any]) -> str:
    return identity_hash(NAME, VERSION, interactions_hash, params,
                         protocol_code_hash(__file__, loo.__file__, windows.__file__))


def cutoffs(times: np.ndarray, params: dict[str, Any]) -> tuple[int, int]:
    """(T_valid, T_test): the timestamps of the rows at the ``valid_start`` and ``test_start`` quantiles of the
    time-sorted log. Rows at a cutoff's timestamp fall after it, so no training row shares a second with an event."""
    t = np.sort(times, kind="stable")
    n = len(t)
    if n < 3:
        raise BenchError(f"temporal protocol: the log has {n} rows; it needs at least 3")
    t_valid, t_test = int(t[int(params["valid_start"] * n)]), int(t[int(params["test_start"] * n)])
    if not int(t[0]) < t_valid < t_test:
        raise BenchError(f"temporal protocol: cutoffs {t_valid} and {t_test} leave a period empty (timestamps from "
                         f"{int(t[0])} to {int(t[-1])}); move valid_start/test_start")
    return t_valid, t_test


def build(inter: Interactions, params: dict[str, Any]) -> Split:
    n_rows, n_users, n_items = len(inter), inter.n_users, inter.n_items
    width = min(params["n_negatives"], max(n_items - 1, 1))
    order = np.argsort(inter.time, kind="stable")  # total order: (time, original row)
    u, i, t, y = inter.user[order], inter.item[order], inter.time[order], inter.label[order]
    pos = np.arange(n_rows, dtype=np.int64)
    tau = params["tau"]
    t_valid, t_test = cutoffs(t, params)
    train = t < t_valid  # every statistic a method can read comes from these rows only
    ctx = {"valid": t < t_test, "test": np.ones(n_rows, dtype=bool)}  # each part's context (windows, existence)
    train_pos = train & (y == 1)
    item_train_pos = np.bincount(i[train_pos], minlength=n_items)
    user_train_pos = np.bincount(u[train_pos], minlength=n_users)
    first = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)  # the same for both parts: a valid event's
    np.minimum.at(first, i, t)  # time is below T_test, so a later row cannot move "first < t"

    ties = {"history": 0, "feedback_pos": 0, "feedback_neg": 0}
    train_windows = _window_maker(u, i, t, pos, train_pos, train & (y == 0), n_users, n_items, params, ties,
                                  inclusive=False)
    arrays: dict[str, np.ndarray] = {
        "context/valid": ctx["valid"], "context/test": ctx["test"],
        "train/user": u[train].astype(np.int32), "train/item": i[train].astype(np.int32),
        "train/label": y[train].astype(np.int8), "train/time": t[train], "train/place": pos[train],
        "train/value": inter.value[order][train],
        "item/train_pos_count": item_train_pos.astype(np.int64),
    }
    first_train = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_train, i[train], t[train])
    arrays["item/first_train_time"] = first_train
    arrays.update(train_windows("train", u[train], i[train], t[train], pos[train], (int(train.sum()),)))
    n_sampled = 0
    if params["train_negatives"]:
        arrays, n_sampled = _with_train_negatives(arrays, params, u, i, t, pos, train_pos, train, first_train,
                                                  train_pos, train & (y == 0), n_users, n_items)

    rng = np.random.default_rng(params["split_seed"])
    meta_parts: dict[str, Any] = {}
    for part, lo, hi in (("valid", t_valid, t_test), ("test", t_test, None)):
        in_part = (t >= lo) & ((t < hi) if hi is not None else True)
        known = user_train_pos[u] >= params["min_user_train_pos"]
        ep = np.flatnonzero(in_part & (y == 1) & known)
        n_unknown_user = int((in_part & (y == 1) & ~known).sum())
        keep = first[i[ep]] < t[ep]  # loo's existence rule: a row of the item in the context before the event
        ep = ep[keep]
        users, items, times = u[ep], i[ep], t[ep]
        # a negative is never a positive of the user known by the part's end (so validation ignores test rows)
        user_pos: list[set[int]] = [set() for _ in range(n_users)]
        seen = ctx[part] & (y == 1)
        for uu, ii in zip(u[seen].tolist(), i[seen].tolist()):
            user_pos[uu].add(ii)
        pool_order = np.argsort(first, kind="stable")
        cand, cmask = _draw_candidates(rng, users, items, times, pool_order, first[pool_order], user_pos, width, True)
        c_pos, c_neg = ctx[part] & (y == 1), ctx[part] & (y == 0)
        make = _window_maker(u, i, t, pos, c_pos, c_neg, n_users, n_items, params, ties, inclusive=False)
        at_event = _CountBefore(i[c_pos], t[c_pos])  # positives logged before the event, training or not
        n_prior = at_event(items, times)
        arrays.update({f"{part}/user": users.astype(np.int32), f"{part}/item": items.astype(np.int32),
                       f"{part}/time": times, f"{part}/place": ep, f"{part}/cold": n_prior < tau,
                       f"{part}/n_prior_pos": n_prior.astype(np.int64),
                       **exposure(item_train_pos, items, tau, part),
                       f"{part}/cand_cold": (item_train_pos[cand] < tau) & cmask,
                       f"{part}/cand": cand, f"{part}/cand_mask": cmask})
        arrays.update(make(part, users, cand, times, ep, cand.shape))
        cold_model = arrays[f"{part}/cold_model"]
        meta_parts[part] = {
            "n_events": len(ep), "n_users": int(len(np.unique(users))),
            "n_events_positive_not_existing": int((~keep).sum()), "n_events_user_not_in_training": n_unknown_user,
            "n_cold_model_targets": int(cold_model.sum()),
            "cold_model_share": float(cold_model.mean()) if len(ep) else 0.0,
            "n_never_seen_targets": int((arrays[f"{part}/n_train_pos"] == 0).sum()),
            "n_cold_targets": int((n_prior < tau).sum()),
            "n_events_short_candidates": int((cmask.sum(axis=1) < params["n_negatives"] + 1).sum()),
            "min_candidates": int(cmask.sum(axis=1).min()) if len(ep) else 0}

    meta = {
        "split_hash": split_hash(inter.canonical_hash(), params), "protocol": NAME, "protocol_version": VERSION,
        "dataset": inter.dataset, "params": params, "interactions_sha256": inter.canonical_hash(),
        "n_users": n_users, "n_items": n_items, "n_rows": n_rows, "t_valid": t_valid, "t_test": t_test,
        "n_train_rows": int(train.sum()), "n_train_positives": int(train_pos.sum()),
        "n_train_sampled_negatives": n_sampled, "n_context_rows_not_trained": 0,
        "n_valid_period_rows": int(((t >= t_valid) & (t < t_test)).sum()), "n_test_period_rows": int((t >= t_test).sum()),
        "tau": tau, "n_tail_items": int((item_train_pos < tau).sum()),
        "tail_item_share": float((item_train_pos < tau).mean()), "n_items_with_train_positive":
            int((item_train_pos > 0).sum()), "tie_excluded_window_entries": ties, "parts": meta_parts,
    }
    assert set(meta_parts) == set(PARTS)
    return Split(meta=meta, arrays=arrays)
