"""The ``loo`` protocol: PROMO's leave-one-out evaluation, made leak-free (design.md section 4).

Per user, the last positive is the test event and the one before it the validation event;
training rows are the user's labelled rows strictly before the validation event in the total
order. Every statistic (cold/warm status, item existence, windows) is causal: it reads training
rows strictly before the time it is used for (and, at test, the validation events before it).
Version 3 (docs/protocols.md): the cold flag counts positives before the event, the positive and
the negatives obey one existence rule, and the test context holds the validation events.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from benchmark.data.interactions import Interactions
from benchmark.errors import BenchError
from benchmark.identity import protocol_code_hash
from benchmark.protocols.params import identity_hash, merge
from benchmark.protocols.split import PARTS, Split
from benchmark.protocols import windows
from benchmark.protocols.windows import CausalIndex

NAME = "loo"
VERSION = "3"  # bump when the split's semantics change: it is part of the split hash
EVALUATION = "sampled"  # each event ranks its positive against frozen sampled negatives
IMPLICIT = False  # training rows carry explicit negatives (label 0)
VALID_METRIC = "hr@10"  # early stopping, over all validation events
PROVIDES = frozenset({"history", "feedback"})  # causal windows for every row and candidate
DEFAULTS: dict[str, Any] = {"tau": 50, "n_negatives": 100, "candidates": "existing", "history_len": 50,
                            "feedback_len": 10, "test_context_valid": True, "min_prior_positives": 0,
                            "train_negatives": 0, "split_seed": 0}
MIN_POSITIVES = 3  # users with fewer positives give all their rows to training and no event


def resolve_params(card_defaults: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = merge(NAME, DEFAULTS, card_defaults, overrides)
    if params["candidates"] not in ("existing", "all"):
        raise BenchError(f"loo protocol: candidates must be 'existing' or 'all', got {params['candidates']!r}")
    for key in ("tau", "n_negatives", "history_len", "feedback_len"):
        if params[key] < 1:
            raise BenchError(f"loo protocol: {key} must be at least 1, got {params[key]}")
    for key in ("min_prior_positives", "train_negatives"):
        if params[key] < 0:
            raise BenchError(f"loo protocol: {key} must be at least 0, got {params[key]}")
    return params


def split_hash(interactions_hash: str, params: dict[str, Any]) -> str:
    """Identity of a split: the canonical data, the protocol's name, parameters and code version, the seed."""
    return identity_hash(NAME, VERSION, interactions_hash, params, protocol_code_hash(__file__, windows.__file__))


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


def _train_negatives(rng: np.random.Generator, users: np.ndarray, items: np.ndarray, times: np.ndarray,
                     first: np.ndarray, rated_keys: np.ndarray, rated_first: np.ndarray, n_items: int, n: int,
                     max_rounds: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(row, item): ``n`` sampled negatives per query row (user, its positive item, time), drawn uniformly with
    replacement among the items that exist at that time (a training-period row strictly before it: the evaluation
    candidates' existence rule), other than the positive and than items the user rated strictly before that time
    (``rated_keys``: sorted user * n_items + item; ``rated_first``: the first time of each). A later rating of the
    user never decides a draw. A row with no such item keeps fewer; rejected draws are redrawn."""
    pool_order = np.argsort(first, kind="stable")
    size = np.searchsorted(first[pool_order], times, side="left")
    rows = np.repeat(np.arange(len(users)), n)
    rows = rows[size[rows] > 0]
    drawn = np.empty(len(rows), dtype=np.int64)
    todo = np.arange(len(rows))
    for _ in range(max_rounds):
        if not len(todo):
            break
        r = rows[todo]
        drawn[todo] = pool_order[(rng.random(len(todo)) * size[r]).astype(np.int64)]
        key = users[r].astype(np.int64) * n_items + drawn[todo]
        hit = np.minimum(np.searchsorted(rated_keys, key), max(len(rated_keys) - 1, 0))
        before = (rated_keys[hit] == key) & (rated_first[hit] < times[r]) if len(rated_keys) else np.zeros(len(r), bool)
        todo = todo[before | (drawn[todo] == items[r])]
    keep = np.ones(len(rows), dtype=bool)
    keep[todo] = False  # every existing item already rated by this user, or luck ran out: fewer for this row
    return rows[keep], drawn[keep]


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
    out = make("train", tr["user"], tr["item"], tr["time"], tr["place"], (len(tr["user"]),))
    for part in PARTS:
        ev = split.part(part)
        out.update(make(part, ev["user"], ev["cand"], ev["time"], ev["place"], ev["cand"].shape))
    return out


def exposure(item_trained_pos: np.ndarray, items: np.ndarray, tau: int, part: str) -> dict[str, np.ndarray]:
    """Cold *for the model*: the target's positives in the training rows the model was fit on, whatever their
    time (``{part}/n_train_pos``, ``{part}/cold_model``). Under a per-user split these include other users' rows
    after the event, which the at-event flag (``{part}/cold``) leaves out: the two differ on ``loo``."""
    n = item_trained_pos[items].astype(np.int64)
    return {f"{part}/n_train_pos": n, f"{part}/cold_model": n < tau}


class _CountBefore:
    """How many of the given (key, time) entries have this key and a time strictly before the query's: an item's
    training positives before an event (the causal cold flag), a user's positives before a row (the sample filter)."""

    def __init__(self, items: np.ndarray, times: np.ndarray) -> None:
        self.span = np.int64(int(times.max()) + 2 if len(times) else 2)
        self.keys = np.sort(items.astype(np.int64) * self.span + times.astype(np.int64))

    def __call__(self, items: np.ndarray, times: np.ndarray) -> np.ndarray:
        items = items.astype(np.int64)
        t = np.broadcast_to(np.clip(times.astype(np.int64), 0, self.span - 1), items.shape)
        return (np.searchsorted(self.keys, items * self.span + t, side="left")
                - np.searchsorted(self.keys, items * self.span, side="left"))


def _with_train_negatives(arrays: dict[str, np.ndarray], params: dict[str, Any], u: np.ndarray, i: np.ndarray,
                          t: np.ndarray, pos: np.ndarray, train_pos: np.ndarray, context: np.ndarray,
                          first: np.ndarray, ctx_pos: np.ndarray, ctx_neg: np.ndarray, n_users: int,
                          n_items: int) -> tuple[dict[str, np.ndarray], int]:
    """The training rows plus ``train_negatives`` sampled items per training positive, as rows of label 0 with
    ``train/sampled`` set: the same user, time and place as their positive (so the same history), and the sampled
    item's own causal windows as of that time. Every method that reads training rows gets them, so the training
    signal is one for all; sampled rows never enter a window, a count or an existence time."""
    rng = np.random.default_rng([params["split_seed"], 1])  # its own stream: the candidates do not move
    keys = u[context].astype(np.int64) * n_items + i[context]
    rated_keys, first_at = np.unique(keys, return_index=True)  # rows are in time order: the first is the earliest
    q = np.flatnonzero(train_pos)
    rows, items = _train_negatives(rng, u[q], i[q], t[q], first, rated_keys, t[context][first_at], n_items,
                                   params["train_negatives"])
    q = q[rows]
    scratch = {"history": 0, "feedback_pos": 0, "feedback_neg": 0}  # the split's tie counts describe real rows
    make = _window_maker(u, i, t, pos, ctx_pos, ctx_neg, n_users, n_items, params, scratch, inclusive=False)
    neg = {"train/user": u[q].astype(np.int32), "train/item": items.astype(np.int32),
           "train/label": np.zeros(len(q), dtype=np.int8), "train/time": t[q], "train/place": pos[q],
           "train/value": np.zeros(len(q), dtype=arrays["train/value"].dtype)}
    neg.update(make("train", u[q], items, t[q], pos[q], (len(q),)))
    n_real = len(arrays["train/user"])
    order = np.argsort(np.concatenate([arrays["train/place"], neg["train/place"]]), kind="stable")
    out = dict(arrays)
    for key, value in neg.items():
        out[key] = np.concatenate([arrays[key], value])[order]
    out["train/sampled"] = (np.arange(n_real + len(q)) >= n_real)[order]
    return out, len(q)


def build(inter: Interactions, params: dict[str, Any]) -> Split:
    n_rows, n_users, n_items = len(inter), inter.n_users, inter.n_items
    # No event can have more than n_items - 1 negatives: the candidate arrays are events x (width + 1), so a huge
    # n_negatives must not size them (100000 once exhausted memory). "Up to n_negatives" is the rule either way;
    # short candidate lists are counted in the metadata, and a request beyond the catalogue is said out loud.
    width = min(params["n_negatives"], max(n_items - 1, 1))
    if params["n_negatives"] > width:
        print(f"note: loo protocol: n_negatives={params['n_negatives']} but {inter.dataset} has {n_items} items: "
              f"each event gets at most {width} negatives (every existing item its user never rated)",
              file=sys.stderr)
    order = np.argsort(inter.time, kind="stable")  # total order: (time, original row)
    u, i, t, y = inter.user[order], inter.item[order], inter.time[order], inter.label[order]
    pos = np.arange(n_rows, dtype=np.int64)
    tau = params["tau"]

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
    context = pos < cutoff[u]  # the training period: every row a window or statistic may read
    # the release's sample filter (promo-spec 7.2): a training *sample* needs that many earlier positives of its
    # user; the filtered rows stay in the context (windows, existence, counts), as in the released offsets
    # (counted strictly before the row's time, the release's tie rule: its offsets take the first of a tied group)
    train = context & (_CountBefore(u[y == 1], t[y == 1])(u, t) >= params["min_prior_positives"])

    ctx_pos, ctx_neg = context & (y == 1), context & (y == 0)
    item_train_pos = np.bincount(i[ctx_pos], minlength=n_items)
    item_trained_pos = np.bincount(i[train & (y == 1)], minlength=n_items)  # what the model was fit on
    tail = item_train_pos < tau  # the whole-training-period flag (version 2's "cold"): reads later rows
    prior_count = _CountBefore(i[ctx_pos], t[ctx_pos])
    valid_rows = np.zeros(n_rows, dtype=bool)
    valid_rows[valid_pos[has_event]] = True
    first_train = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_train, i[context], t[context])
    # the test context: training rows plus every user's validation event (a real interaction before the test
    # event that is not its label), as standard leave-one-out and the release feed it; never a training row
    with_valid = params["test_context_valid"]
    first_test = first_train.copy()
    if with_valid:
        np.minimum.at(first_test, i[valid_rows], t[valid_rows])

    user_pos: list[set[int]] = [set() for _ in range(n_users)]
    for uu, ii in zip(u[y == 1].tolist(), i[y == 1].tolist()):
        user_pos[uu].add(ii)

    ties = {"history": 0, "feedback_pos": 0, "feedback_neg": 0}
    windows = _window_maker(u, i, t, pos, ctx_pos, ctx_neg, n_users, n_items, params, ties, inclusive=False)
    test_windows = (_window_maker(u, i, t, pos, ctx_pos | valid_rows, ctx_neg, n_users, n_items, params, ties,
                                  inclusive=False) if with_valid else windows)

    arrays: dict[str, np.ndarray] = {
        # each part's context as a mask over the total order: the full-ranking evaluation builds every item's
        # windows and existence from it (benchmark/catalogue.py)
        "context/valid": context, "context/test": (context | valid_rows) if with_valid else context,
        "train/user": u[train].astype(np.int32), "train/item": i[train].astype(np.int32),
        "train/label": y[train].astype(np.int8), "train/time": t[train], "train/place": pos[train],
        "train/value": inter.value[order][train],
        "item/train_pos_count": item_train_pos.astype(np.int64), "item/tail": tail,
        "item/first_train_time": first_train,
    }
    arrays.update(windows("train", u[train], i[train], t[train], pos[train], (int(train.sum()),)))
    n_sampled = 0
    if params["train_negatives"]:
        arrays, n_sampled = _with_train_negatives(arrays, params, u, i, t, pos, train & (y == 1), context,
                                                  first_train, ctx_pos, ctx_neg, n_users, n_items)

    rng = np.random.default_rng(params["split_seed"])
    existing = params["candidates"] == "existing"
    meta_parts: dict[str, Any] = {}
    for part, part_pos, first, make in (("valid", valid_pos, first_train, windows),
                                        ("test", test_pos, first_test, test_windows)):
        users = np.flatnonzero(has_event)
        ep = part_pos[users]
        # one existence rule for the positive and the negatives: a row in the part's context before the event
        # (so no candidate's windows are empty and emptiness cannot point at the positive)
        keep = first[i[ep]] < t[ep] if existing else np.ones(len(ep), dtype=bool)
        users, ep = users[keep], ep[keep]
        items, times = i[ep], t[ep]
        pool_order = np.argsort(first, kind="stable")
        cand, cmask = _draw_candidates(rng, users, items, times, pool_order, first[pool_order], user_pos,
                                       width, existing)
        n_prior = prior_count(items, times)
        cold = n_prior < tau
        arrays.update({f"{part}/user": users.astype(np.int32), f"{part}/item": items.astype(np.int32),
                       f"{part}/time": times, f"{part}/place": ep, f"{part}/cold": cold, f"{part}/tail": tail[items],
                       f"{part}/n_prior_pos": n_prior.astype(np.int64),
                       **exposure(item_trained_pos, items, tau, part),
                       f"{part}/cand_cold": (prior_count(cand, times[:, None]) < tau) & cmask,
                       f"{part}/cand": cand, f"{part}/cand_mask": cmask})
        arrays.update(make(part, users, cand, times, ep, cand.shape))
        short = int((cmask.sum(axis=1) < params["n_negatives"] + 1).sum())
        meta_parts[part] = {"n_events": len(ep), "n_events_positive_not_existing": int((~keep).sum()),
                            "n_cold_targets": int(cold.sum()),
                            "cold_target_share": float(cold.mean()) if len(ep) else 0.0,
                            "n_tail_targets": int(tail[items].sum()),
                            "n_events_short_candidates": short,
                            "min_candidates": int(cmask.sum(axis=1).min()) if len(ep) else 0,
                            "n_cold_model_targets": int(arrays[f"{part}/cold_model"].sum())}
    own_valid = i[valid_pos[arrays["test/user"]]]  # each test user's own validation item
    meta_parts["test"]["n_histories_with_own_valid_item"] = int(
        np.any((arrays["test/hist"] == own_valid[:, None]) & arrays["test/hist_mask"], axis=1).sum())

    meta = {
        "split_hash": split_hash(inter.canonical_hash(), params), "protocol": NAME, "protocol_version": VERSION,
        "dataset": inter.dataset, "params": params, "interactions_sha256": inter.canonical_hash(),
        "n_users": n_users, "n_items": n_items, "n_rows": n_rows, "n_train_rows": int(train.sum()),
        "n_train_positives": int((train & (y == 1)).sum()), "n_users_with_events": int(has_event.sum()),
        "n_context_rows": int(context.sum()), "n_context_rows_not_trained": int((context & ~train).sum()),
        "n_train_sampled_negatives": n_sampled,
        "n_dropped_rows": int(n_rows - context.sum() - 2 * has_event.sum()),
        "test_context": "train+valid" if with_valid else "train",
        "tau": tau, "n_tail_items": int(tail.sum()), "tail_item_share": float(tail.mean()),
        "tie_excluded_window_entries": ties, "parts": meta_parts,
    }
    assert set(meta_parts) == set(PARTS)
    return Split(meta=meta, arrays=arrays)
