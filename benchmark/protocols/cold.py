"""The ``cold`` protocol: strict new-item cold start (design.md section 4; baselines.md part C2).

Implicit positives only. A share of the items becomes cold and *all* their interactions leave
training; cold items are split by item into validation and test items; warm interactions are split
80/10/10 at random. Evaluation is full ranking over three candidate sets (cold, warm, all items),
done by ``benchmark.fullrank``. Every statistic (popularity, the negative pool) comes from the
training rows, which hold no cold item.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.data.interactions import Interactions
from benchmark.errors import BenchError
from benchmark.identity import protocol_code_hash
from benchmark.protocols.params import identity_hash, merge
from benchmark.protocols.split import PARTS, Split

NAME = "cold"
VERSION = "2"  # part of the split hash: bump when the split's semantics change (2: train/pos and
# item/first_train_time fixed, see docs/protocols.md)
EVALUATION = "full"  # full ranking (benchmark.fullrank), not sampled candidates
IMPLICIT = True  # every training row is a positive; negatives are sampled from warm items
# early stopping over ALL candidates: stopping on cold items alone lets a model give up warm ones
VALID_METRIC = "ndcg@20"
PROVIDES: frozenset[str] = frozenset()  # no event time, so no causal windows
DEFAULTS: dict[str, Any] = {"cold_share": 0.2, "cold_by": "random", "valid_share": 0.1, "test_share": 0.1,
                            "split_seed": 0}
COLD_BY = ("random", "time")


def resolve_params(card_defaults: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = merge(NAME, DEFAULTS, card_defaults, overrides)
    if params["cold_by"] not in COLD_BY:
        raise BenchError(f"cold protocol: cold_by must be one of {', '.join(COLD_BY)}, got {params['cold_by']!r}")
    for key in ("cold_share", "valid_share", "test_share"):
        if not 0.0 < params[key] < 1.0:
            raise BenchError(f"cold protocol: {key} must be strictly between 0 and 1, got {params[key]}")
    if params["valid_share"] + params["test_share"] >= 1.0:
        raise BenchError("cold protocol: valid_share + test_share must leave some warm rows for training")
    return params


def split_hash(interactions_hash: str, params: dict[str, Any]) -> str:
    return identity_hash(NAME, VERSION, interactions_hash, params, protocol_code_hash(__file__))


def _choose_cold(items: np.ndarray, first_time: np.ndarray, n_cold: int, by: str,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(validation cold items, test cold items). ``time``: the newest by first positive; the older half validates."""
    if by == "random":
        cold = rng.permutation(items)[:n_cold]
        half = len(cold) // 2
        return np.sort(cold[:half]), np.sort(cold[half:])
    order = items[np.lexsort((items, first_time[items]))]  # oldest first; ties by item id
    cold = order[len(order) - n_cold:]
    half = len(cold) // 2
    return np.sort(cold[:half]), np.sort(cold[half:])


def build(inter: Interactions, params: dict[str, Any]) -> Split:
    rng = np.random.default_rng(params["split_seed"])
    n_users, n_items = inter.n_users, inter.n_items
    order = np.argsort(inter.time, kind="stable")  # total order: (time, original row)
    u, i, t, y = inter.user[order], inter.item[order], inter.time[order], inter.label[order]
    keep = np.flatnonzero(y == 1)
    # implicit feedback: one row per (user, item), its first positive in the total order
    _, first = np.unique(u[keep] * np.int64(n_items) + i[keep], return_index=True)
    rows = keep[np.sort(first)]
    n_duplicates = len(keep) - len(rows)
    ru, ri, rt = u[rows], i[rows], t[rows]

    items = np.unique(ri)
    first_time = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_time, ri, rt)
    n_cold = int(round(params["cold_share"] * len(items)))
    if n_cold < 2 or n_cold >= len(items):
        raise BenchError(f"cold protocol: {len(items)} items with positives give {n_cold} cold items; "
                         f"need at least 2 cold and 1 warm item")
    cold_valid, cold_test = _choose_cold(items, first_time, n_cold, params["cold_by"], rng)
    kind = np.zeros(n_items, dtype=np.int8)  # 0: no positive at all, 1 warm, 2 cold-valid, 3 cold-test
    kind[items] = 1
    kind[cold_valid], kind[cold_test] = 2, 3

    warm_rows = np.flatnonzero(kind[ri] == 1)
    perm = rng.permutation(warm_rows)
    n_valid = int(round(params["valid_share"] * len(perm)))
    n_test = int(round(params["test_share"] * len(perm)))
    part = np.full(len(rows), -1, dtype=np.int8)  # 0 train, 1 valid, 2 test (warm); cold rows below
    part[perm[n_valid + n_test:]] = 0
    part[perm[:n_valid]] = 1
    part[perm[n_valid:n_valid + n_test]] = 2
    # a held-out warm row whose user or item has no training row goes back to training (as ColdRec/ALDI):
    # otherwise its item would not be warm and its user would have no training signal
    in_train = part == 0
    train_users = np.zeros(n_users, bool)
    train_users[ru[in_train]] = True
    train_items = np.zeros(n_items, bool)
    train_items[ri[in_train]] = True
    moved = (part > 0) & (~train_users[ru] | ~train_items[ri])
    part[moved] = 0
    train_users[ru[part == 0]] = True
    train_items[ri[part == 0]] = True
    assert not train_items[kind >= 2].any() and (train_items == (kind == 1)).all()

    # cold rows: all interactions of a cold item are evaluation rows of its part, for users with training rows
    cold_rows = kind[ri] >= 2
    eligible = train_users[ru]
    part[cold_rows & eligible & (kind[ri] == 2)] = 1
    part[cold_rows & eligible & (kind[ri] == 3)] = 2
    left_out_cold_rows = int((cold_rows & ~eligible).sum())

    tr = part == 0
    first_train = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_train, ri[tr], rt[tr])  # training rows only
    train_pos_count = np.bincount(ri[tr], minlength=n_items)
    arrays: dict[str, np.ndarray] = {
        "train/user": ru[tr].astype(np.int32), "train/item": ri[tr].astype(np.int32),
        "train/label": np.ones(int(tr.sum()), dtype=np.int8), "train/time": rt[tr],
        "train/place": rows[tr].astype(np.int64),  # place in the total order, as in loo
        "train/value": inter.value[order][rows[tr]],
        "item/train_pos_count": train_pos_count.astype(np.int64), "item/is_cold": kind >= 2,
        "item/kind": kind, "item/first_train_time": first_train,
    }
    meta_parts: dict[str, Any] = {}
    for code, name in ((1, "valid"), (2, "test")):
        sel = part == code
        cold = kind[ri[sel]] >= 2
        arrays.update({f"{name}/user": ru[sel].astype(np.int32), f"{name}/item": ri[sel].astype(np.int32),
                       f"{name}/cold": cold, f"{name}/time": rt[sel]})
        meta_parts[name] = {"n_rows": int(sel.sum()), "n_cold_rows": int(cold.sum()),
                            "n_warm_rows": int((~cold).sum()),
                            "n_users_cold": int(len(np.unique(ru[sel][cold]))),
                            "n_users_warm": int(len(np.unique(ru[sel][~cold]))),
                            "n_users_all": int(len(np.unique(ru[sel])))}
    assert set(meta_parts) == set(PARTS)
    n_eval_users = int(train_users.sum())
    for name in PARTS:  # users with training rows but no evaluation item in a candidate set are left out of it
        mp = meta_parts[name]
        mp.update({f"n_users_left_out_{s}": n_eval_users - mp[f"n_users_{s}"] for s in ("all", "cold", "warm")})

    meta = {
        "split_hash": split_hash(inter.canonical_hash(), params), "protocol": NAME, "protocol_version": VERSION,
        "dataset": inter.dataset, "params": params, "interactions_sha256": inter.canonical_hash(),
        "n_users": n_users, "n_items": n_items, "n_rows": len(inter), "n_positive_pairs": len(rows),
        "n_duplicate_positives_dropped": int(n_duplicates), "n_train_rows": int(tr.sum()),
        "n_train_users": n_eval_users, "n_items_with_positives": int(len(items)),
        "n_items_without_positives": int(n_items - len(items)),
        "n_warm_items": int((kind == 1).sum()), "n_cold_valid_items": int(len(cold_valid)),
        "n_cold_test_items": int(len(cold_test)), "n_cold_items": int(n_cold),
        "cold_item_share": float(n_cold / len(items)), "tau": None,
        "n_heldout_rows_moved_to_train": int(moved.sum()),
        "n_cold_rows_left_out_no_train_user": left_out_cold_rows, "parts": meta_parts,
    }
    return Split(meta=meta, arrays=arrays)
