"""The ``warmup`` protocol: few-shot warm-up of new items, the CTR test of MetaEmb, MWUF and CVAR.

design.md section 4; baselines.md part C1.

Old items (at least ``n_old`` labelled rows) give all their rows to training. New items (fewer rows) are split
50/50 by item into validation and test items. Per new item, in the total order (time, original row): the first
``k`` rows are warm-a, the next ``k`` warm-b, the next ``k`` warm-c, and the rest are its evaluation rows. Items
with fewer than ``3k + min_eval_rows`` rows are left out and counted.

Two strictness rules beyond the field's split (CVAR's ``movielens1M_preprocess.ipynb``):
- an evaluation row with the same timestamp as the item's last warm-c row is dropped (counted): warm-up never
  uses a row at the time of a row it is evaluated on;
- an evaluation or warm-up row whose user has no training row is dropped (counted): that user has no trained
  representation.

Old/new status is an eligibility rule of the protocol, as in every paper that uses it: it counts an item's whole
log, so the new items are by construction the less popular ones. No method sees that count; the only per-item
count a method gets is how many warm-up rows it has been shown (docs/protocols.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.data.interactions import Interactions
from benchmark.errors import BenchError
from benchmark.identity import protocol_code_hash
from benchmark.protocols.params import identity_hash, merge
from benchmark.protocols.split import PARTS, Split

NAME = "warmup"
VERSION = "3"  # 2: the first stage is "base" (was "cold"), the split meta lost features_sha256; 3: warm_lrs
EVALUATION = "pointwise"  # labelled rows scored one by one: AUC per new item, pooled AUC, log-loss
IMPLICIT = False  # training rows are labelled (1 positive / 0 explicit negative)
VALID_METRIC = "auc"  # mean per-item AUC of the validation new items at the base stage (before any warm-up)
PROVIDES: frozenset[str] = frozenset()  # no causal windows
# "base": the fitted model before any warm-up batch (the papers' "cold-start phase"); not called "cold", which
# names the protocol and the subsets of the other two
STAGES = ("base", "warm-a", "warm-b", "warm-c")
DEFAULTS: dict[str, Any] = {"n_old": 100, "k": 10, "min_eval_rows": 10, "split_seed": 0,
                            # the warm-up budget, the same for every method (the harness runs the loop); each
                            # method's learning rate is chosen from warm_lrs on the validation items (issue 19:
                            # one rate chosen on the CTR family favoured it), warm_lr when warm_lrs is empty
                            "warm_lr": 1e-3, "warm_lrs": "1e-4,1e-3,1e-2", "warm_batch": 32, "warm_epochs": 1}


def resolve_params(card_defaults: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = merge(NAME, DEFAULTS, card_defaults, overrides)
    for key in ("n_old", "k", "min_eval_rows", "warm_batch", "warm_epochs"):
        if params[key] < 1:
            raise BenchError(f"warmup protocol: {key} must be at least 1, got {params[key]}")
    if params["n_old"] <= 3 * params["k"] + params["min_eval_rows"]:
        raise BenchError(f"warmup protocol: n_old ({params['n_old']}) must exceed 3*k + min_eval_rows "
                         f"({3 * params['k'] + params['min_eval_rows']}), or no item can be new")
    if not params["warm_lr"] > 0:
        raise BenchError(f"warmup protocol: warm_lr must be positive, got {params['warm_lr']}")
    warm_lrs(params)
    return params


def warm_lrs(params: dict[str, Any]) -> tuple[float, ...]:
    """The learning rates validation chooses from (ascending), or ``(warm_lr,)`` when ``warm_lrs`` is empty."""
    text = params["warm_lrs"].strip()
    if not text:
        return (float(params["warm_lr"]),)
    try:
        grid = tuple(sorted({float(v) for v in text.split(",")}))
    except ValueError:
        grid = ()
    if not grid or not all(v > 0 for v in grid):
        raise BenchError(f"warmup protocol: warm_lrs must be positive numbers separated by commas (or empty for "
                         f"warm_lr alone), got {params['warm_lrs']!r}")
    return grid


def split_hash(interactions_hash: str, params: dict[str, Any]) -> str:
    return identity_hash(NAME, VERSION, interactions_hash, params, protocol_code_hash(__file__))


def _stage_rows(item_rows: np.ndarray, t: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """(stage per row of one item, in the total order: 1..3 warm-up, 4 evaluation, 0 dropped; n dropped for a
    time tie with the last warm-up row)."""
    stage = np.zeros(len(item_rows), dtype=np.int8)
    stage[:3 * k] = np.repeat(np.arange(1, 4, dtype=np.int8), k)
    last_warm = t[item_rows[3 * k - 1]]
    later = t[item_rows[3 * k:]] > last_warm
    stage[3 * k:][later] = 4
    return stage, int((~later).sum())


def build(inter: Interactions, params: dict[str, Any]) -> Split:
    rng = np.random.default_rng(params["split_seed"])
    n_items, k = inter.n_items, params["k"]
    order = np.argsort(inter.time, kind="stable")  # total order: (time, original row)
    u, i, t, y, v = inter.user[order], inter.item[order], inter.time[order], inter.label[order], inter.value[order]
    counts = np.bincount(i, minlength=n_items)
    old = counts >= params["n_old"]
    need = 3 * k + params["min_eval_rows"]
    candidates = np.flatnonzero(~old & (counts >= need))
    if not old.any():
        raise BenchError(f"warmup protocol: no item has n_old={params['n_old']} rows; lower n_old in the card")

    train = old[i]
    train_users = np.zeros(inter.n_users, bool)
    train_users[u[train]] = True
    # per new item, its rows in the total order (users without a training row dropped first)
    usable = ~train & train_users[u]
    dropped_no_user = int((~train & ~train_users[u] & np.isin(i, candidates)).sum())
    stage = np.zeros(len(i), dtype=np.int8)
    by_item = np.argsort(i[usable], kind="stable")
    rows_usable = np.flatnonzero(usable)[by_item]
    starts = np.searchsorted(i[rows_usable], candidates, side="left")
    stops = np.searchsorted(i[rows_usable], candidates, side="right")
    new_items, tie_dropped, short = [], 0, 0
    for item, a, b in zip(candidates, starts, stops):
        rows = rows_usable[a:b]
        if len(rows) < need:
            short += 1
            continue
        st, n_tie = _stage_rows(rows, t, k)
        if int((st == 4).sum()) < params["min_eval_rows"]:
            short += 1
            continue
        stage[rows] = st
        tie_dropped += n_tie
        new_items.append(item)
    new_items = np.asarray(new_items, dtype=np.int64)
    if len(new_items) < 2:
        raise BenchError(f"warmup protocol: only {len(new_items)} new items have {need} rows; lower k or n_old")
    perm = rng.permutation(new_items)
    half = len(perm) // 2
    kind = np.zeros(n_items, dtype=np.int8)  # 0 no rows / left out, 1 old, 2 new-valid, 3 new-test
    kind[old] = 1
    kind[perm[:half]], kind[perm[half:]] = 2, 3

    tr = train
    arrays: dict[str, np.ndarray] = {
        "train/user": u[tr].astype(np.int32), "train/item": i[tr].astype(np.int32),
        "train/label": y[tr].astype(np.int8), "train/time": t[tr], "train/place": np.flatnonzero(tr).astype(np.int64),
        "train/value": v[tr],
        "item/train_pos_count": np.bincount(i[tr][y[tr] == 1], minlength=n_items).astype(np.int64),
        "item/kind": kind,
    }
    meta_parts: dict[str, Any] = {}
    for code, name in ((2, "valid"), (3, "test")):
        mine = kind[i] == code
        ev = mine & (stage == 4)
        wu = mine & (stage >= 1) & (stage <= 3)
        for prefix, sel in ((name, ev), (f"warm_{name}", wu)):  # place: the row's place in the total order
            arrays.update({f"{prefix}/user": u[sel].astype(np.int32), f"{prefix}/item": i[sel].astype(np.int32),
                           f"{prefix}/label": y[sel].astype(np.int8), f"{prefix}/time": t[sel],
                           f"{prefix}/place": np.flatnonzero(sel).astype(np.int64)})
        arrays[f"warm_{name}/stage"] = stage[wu]
        meta_parts[name] = {"n_items": int((kind == code).sum()), "n_eval_rows": int(ev.sum()),
                            "n_eval_positives": int(y[ev].sum()), "n_warmup_rows": int(wu.sum())}
    assert set(meta_parts) == set(PARTS)
    meta = {
        "split_hash": split_hash(inter.canonical_hash(), params), "protocol": NAME, "protocol_version": VERSION,
        "dataset": inter.dataset, "params": params, "interactions_sha256": inter.canonical_hash(),
        "n_users": inter.n_users, "n_items": n_items, "n_rows": len(inter),
        "n_train_rows": int(tr.sum()), "n_train_users": int(train_users.sum()),
        "n_old_items": int(old.sum()), "n_new_items": int(len(new_items)),
        "n_new_valid_items": int(half), "n_new_test_items": int(len(new_items) - half),
        "n_items_left_out_too_few_rows": int(short + ((~old) & (counts > 0) & (counts < need)).sum()),
        "n_items_without_rows": int((counts == 0).sum()),
        "n_rows_left_out": int(len(i) - tr.sum() - (stage > 0).sum()),
        "n_eval_rows_dropped_time_tie": int(tie_dropped), "n_rows_dropped_user_without_training": dropped_no_user,
        "new_item_share": float(len(new_items) / max(1, int((counts > 0).sum()))), "tau": None,
        "parts": meta_parts,
    }
    return Split(meta=meta, arrays=arrays)
