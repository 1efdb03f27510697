"""The ``loo`` protocol: PROMO's leave-one-out evaluation, made leak-free (design.md section 4).

Per user, the last positive is the test event and the one before it the validation event;
training rows are the user's labelled rows strictly before the validation event in the total
order. Every statistic (cold/warm status, item existence, windows) comes from training rows only.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from benchmark.data.interactions import Interactions
from benchmark.errors import BenchError
from benchmark.protocols.params import identity_hash, merge
from benchmark.protocols.split import PARTS, Split
from benchmark.protocols.windows import CausalIndex

NAME = "loo"
VERSION = "2"  # bump when the split's semantics change: it is part of the split hash
EVALUATION = "sampled"  # each event ranks its positive against frozen sampled negatives
IMPLICIT = False  # training rows carry explicit negatives (label 0)
VALID_METRIC = "hr@10"  # early stopping, over all validation events
PROVIDES = frozenset({"history", "feedback"})  # causal windows for every row and candidate
DEFAULTS: dict[str, Any] = {"tau": 50, "n_negatives": 100, "candidates": "existing", "history_len": 50,
                            "feedback_len": 10, "split_seed": 0}
MIN_POSITIVES = 3  # users with fewer positives give all their rows to training and no event


def resolve_params(card_defaults: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = merge(NAME, DEFAULTS, card_defaults, overrides)
    if params["candidates"] not in ("existing", "all"):
        raise BenchError(f"loo protocol: candidates must be 'existing' or 'all', got {params['candidates']!r}")
    for key in ("tau", "n_negatives", "history_len", "feedback_len"):
        if params[key] < 1:
            raise BenchError(f"loo protocol: {key} must be at least 1, got {params[key]}")
    return params


def split_hash(interactions_hash: str, params: dict[str, Any]) -> str:
    """Identity of a split: the canonical data, the protocol's name, parameters and code version, the seed."""
    return identity_hash(NAME, VERSION, interactions_hash, params)


def _draw_candidates(rng: np.random.Generator, users: np.ndarray, positives: np.ndarray, times: np.ndarray,
                     pool_order: np.ndarray, pool_first: np.ndarray, user_pos: list[set[int]],
                     n_neg: int, existing: bool) -> tuple[np.ndarray, np.ndarray]:
    """Column 0 is the positive; then up to ``n_neg`` negatives drawn once, uniformly, without replacement."""
    n = len(users)
    cand = np.zeros((n, n_neg + 1), dtype=np.int32)
    mask = np.zeros((n, n_neg + 1), dtype=bool)
    cand[:, 0], mask[:, 0] = positives, True
    for e in range(n):
        size = int(np.searchsorted(pool_first, times[e], side="left")) if existing else len(pool_order)
        excluded = user_pos[int(users[e])]
        picked: list[int] = []
        if size:
            draw = pool_order[rng.choice(size, size=min(size, n_neg + len(excluded)), replace=False)]
            picked = [int(x) for x in draw if int(x) not in excluded][:n_neg]
            if len(picked) < n_neg and len(draw) < size:  # too many positives in the draw: take the rest in order
                rest = pool_order[rng.permutation(size)]
                seen = set(picked)
                picked += [int(x) for x in rest if int(x) not in excluded and int(x) not in seen][:n_neg - len(picked)]
        cand[e, 1:1 + len(picked)] = picked
        mask[e, 1:1 + len(picked)] = True
    return cand, mask


WindowMaker = Callable[[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple], dict[str, np.ndarray]]
WINDOW_ARRAYS = ("hist", "hist_mask", "fb_pos", "fb_pos_mask", "fb_neg", "fb_neg_mask")


def _window_maker(u: np.ndarray, i: np.ndarray, t: np.ndarray, pos: np.ndarray, pos_rows: np.ndarray,
                  neg_rows: np.ndarray, n_users: int, n_items: int, params: dict[str, Any], ties: dict[str, int],
                  inclusive: bool) -> WindowMaker:
    """One code path for every window: the user's positive items, the item's positive and negative users."""
    hist_index = CausalIndex(u[pos_rows], i[pos_rows], pos[pos_rows], t[pos_rows], n_users)
    fbp_index = CausalIndex(i[pos_rows], u[pos_rows], pos[pos_rows], t[pos_rows], n_items)
    fbn_index = CausalIndex(i[neg_rows], u[neg_rows], pos[neg_rows], t[neg_rows], n_items)
    L, k = params["history_len"], params["feedback_len"]

    def make(prefix: str, users: np.ndarray, items: np.ndarray, times: np.ndarray, positions: np.ndarray,
             shape: tuple) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        h = hist_index.window(users, times, L, positions, inclusive=inclusive)
        out[f"{prefix}/hist"], out[f"{prefix}/hist_mask"] = h.values, h.mask
        ties["history"] += h.tie_excluded
        rep = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        for name, key, index in (("feedback_pos", "fb_pos", fbp_index), ("feedback_neg", "fb_neg", fbn_index)):
            w = index.window(items.ravel(), np.repeat(times, rep), k, np.repeat(positions, rep), inclusive=inclusive)
            out[f"{prefix}/{key}"] = w.values.reshape(*shape, k)
            out[f"{prefix}/{key}_mask"] = w.mask.reshape(*shape, k)
            ties[name] += w.tie_excluded
        return out

    return make


def audit_windows(inter: Interactions, split: Split) -> dict[str, np.ndarray]:
    """The windows as PROMO's released code built them (promo-spec section 11, traps 1 and 2).

    Built from *every* labelled row of the log (held-out events included) and up to and *including*
    the query's own position, so a positive row's item feedback holds its own user and its user
    history holds its own item. For the ``audit_leak`` option only; never used by default.
    """
    order = np.argsort(inter.time, kind="stable")
    u, i, t, y = inter.user[order], inter.item[order], inter.time[order], inter.label[order]
    pos = np.arange(len(u), dtype=np.int64)
    make = _window_maker(u, i, t, pos, y == 1, y == 0, inter.n_users, inter.n_items, split.meta["params"],
                         {"history": 0, "feedback_pos": 0, "feedback_neg": 0}, inclusive=True)
    tr = split.part("train")
    out = make("train", tr["user"], tr["item"], tr["time"], tr["pos"], (len(tr["user"]),))
    for part in PARTS:
        ev = split.part(part)
        out.update(make(part, ev["user"], ev["cand"], ev["time"], ev["pos"], ev["cand"].shape))
    return out


def build(inter: Interactions, params: dict[str, Any]) -> Split:
    n_rows, n_users, n_items = len(inter), inter.n_users, inter.n_items
    order = np.argsort(inter.time, kind="stable")  # total order: (time, original row)
    u, i, t, y = inter.user[order], inter.item[order], inter.time[order], inter.label[order]
    pos = np.arange(n_rows, dtype=np.int64)

    ppos = np.flatnonzero(y == 1)
    ppos = ppos[np.lexsort((ppos, u[ppos]))]  # positives grouped by user, in time order
    counts = np.bincount(u[ppos], minlength=n_users)
    ends = np.cumsum(counts)
    has_event = counts >= MIN_POSITIVES
    test_pos = np.full(n_users, -1, dtype=np.int64)
    valid_pos = np.full(n_users, -1, dtype=np.int64)
    test_pos[has_event] = ppos[ends[has_event] - 1]
    valid_pos[has_event] = ppos[ends[has_event] - 2]
    cutoff = np.where(has_event, valid_pos, n_rows)
    train = pos < cutoff[u]

    tr_pos_rows = train & (y == 1)
    item_train_pos = np.bincount(i[tr_pos_rows], minlength=n_items)
    is_cold = item_train_pos < params["tau"]
    first_time = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_time, i[train], t[train])
    pool_order = np.argsort(first_time, kind="stable")
    pool_first = first_time[pool_order]

    user_pos: list[set[int]] = [set() for _ in range(n_users)]
    for uu, ii in zip(u[y == 1].tolist(), i[y == 1].tolist()):
        user_pos[uu].add(ii)

    tr_neg_rows = train & (y == 0)
    ties = {"history": 0, "feedback_pos": 0, "feedback_neg": 0}
    windows = _window_maker(u, i, t, pos, tr_pos_rows, tr_neg_rows, n_users, n_items, params, ties, inclusive=False)

    arrays: dict[str, np.ndarray] = {
        "train/user": u[train].astype(np.int32), "train/item": i[train].astype(np.int32),
        "train/label": y[train].astype(np.int8), "train/time": t[train], "train/pos": pos[train],
        "train/value": inter.value[order][train],
        "item/train_pos_count": item_train_pos.astype(np.int64), "item/is_cold": is_cold,
        "item/first_train_time": first_time,
    }
    arrays.update(windows("train", u[train], i[train], t[train], pos[train], (int(train.sum()),)))

    rng = np.random.default_rng(params["split_seed"])
    event_users = np.flatnonzero(has_event)
    meta_parts: dict[str, Any] = {}
    for part, part_pos in (("valid", valid_pos), ("test", test_pos)):
        ep = part_pos[event_users]
        items, times = i[ep], t[ep]
        cand, cmask = _draw_candidates(rng, event_users, items, times, pool_order, pool_first, user_pos,
                                       params["n_negatives"], params["candidates"] == "existing")
        arrays.update({f"{part}/user": event_users.astype(np.int32), f"{part}/item": items.astype(np.int32),
                       f"{part}/time": times, f"{part}/pos": ep, f"{part}/cold": is_cold[items],
                       f"{part}/cand": cand, f"{part}/cand_mask": cmask})
        arrays.update(windows(part, event_users, cand, times, ep, cand.shape))
        short = int((cmask.sum(axis=1) < params["n_negatives"] + 1).sum())
        meta_parts[part] = {"n_events": len(ep), "n_cold_targets": int(is_cold[items].sum()),
                            "cold_target_share": float(is_cold[items].mean()) if len(ep) else 0.0,
                            "n_events_short_candidates": short,
                            "min_candidates": int(cmask.sum(axis=1).min()) if len(ep) else 0}

    meta = {
        "split_hash": split_hash(inter.canonical_hash(), params), "protocol": NAME, "protocol_version": VERSION,
        "dataset": inter.dataset, "params": params, "interactions_sha256": inter.canonical_hash(),
        "features_sha256": inter.features_hash(),
        "n_users": n_users, "n_items": n_items, "n_rows": n_rows, "n_train_rows": int(train.sum()),
        "n_train_positives": int(tr_pos_rows.sum()), "n_users_with_events": int(has_event.sum()),
        "n_dropped_rows": int(n_rows - train.sum() - 2 * has_event.sum()),
        "tau": params["tau"], "n_cold_items": int(is_cold.sum()), "cold_item_share": float(is_cold.mean()),
        "tie_excluded_window_entries": ties, "parts": meta_parts,
    }
    assert set(meta_parts) == set(PARTS)
    return Split(meta=meta, arrays=arrays)
