"""Leak tests for the ``loo`` protocol. Each would fail on PROMO's released pipeline (promo-spec section 11)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.errors import BenchError
from benchmark.protocols import get_split, loo
from tests.conftest import synthetic

SMALL = {"n_negatives": 8}  # the synthetic logs have 40 items: fewer than the card's 100 negatives
PARAMS = loo.resolve_params({"tau": 5, "n_negatives": 8, "history_len": 6, "feedback_len": 3})


@pytest.fixture(scope="module")
def built():
    inter = synthetic()
    return inter, loo.build(inter, PARAMS)


def _total_order(inter):
    order = np.argsort(inter.time, kind="stable")
    return inter.user[order], inter.item[order], inter.time[order], inter.label[order]


def test_events_are_last_two_positives_and_never_in_training(built):
    inter, split = built
    u, i, t, y = _total_order(inter)
    tr = split.part("train")
    train_pos = set(tr["place"].tolist())
    for part in ("valid", "test"):
        ev = split.part(part)
        assert not (set(ev["place"].tolist()) & train_pos), f"{part} event inside the training rows"
        assert np.all(y[ev["place"]] == 1) and np.all(u[ev["place"]] == ev["user"])
    v, te = split.part("valid"), split.part("test")
    for user, vp, tp in zip(v["user"], v["place"], te["place"]):
        positives = np.flatnonzero((u == user) & (y == 1))
        assert tp == positives[-1] and vp == positives[-2]
        rows = tr["place"][tr["user"] == user]
        assert rows.max() < vp, "a training row at or after the validation event"
        assert len(rows) == np.count_nonzero((u == user) & (np.arange(len(u)) < vp))


def test_users_with_fewer_than_three_positives_only_train(built):
    inter, split = built
    counts = np.bincount(inter.user[inter.label == 1], minlength=inter.n_users)
    assert set(split.part("test")["user"].tolist()) == set(np.flatnonzero(counts >= 3).tolist())
    for user in np.flatnonzero(counts < 3):
        assert np.count_nonzero(split.part("train")["user"] == user) == np.count_nonzero(inter.user == user)


def _naive_window(keys_col, vals_col, times_col, pos_col, key, t, k):
    sel = np.flatnonzero((keys_col == key) & (times_col < t))
    sel = sel[np.argsort(pos_col[sel], kind="stable")][-k:]
    return vals_col[sel].tolist()


def _validation_rows(inter):
    """Every user's validation event (second-to-last positive in the total order) as (user, item, time, pos)."""
    u, i, t, y = _total_order(inter)
    rows = []
    for user in range(inter.n_users):
        positives = np.flatnonzero((u == user) & (y == 1))
        if len(positives) >= 3:
            rows.append(positives[-2])
    rows = np.array(sorted(rows))
    return u[rows], i[rows], t[rows], rows


def test_windows_are_strictly_before_the_event_and_match_a_naive_build(built):
    """Training rows and validation events read training rows; test events also read every validation event."""
    inter, split = built
    tr = split.part("train")
    vu, vi, vt, vp = _validation_rows(inter)
    L, k = PARAMS["history_len"], PARAMS["feedback_len"]

    def columns(with_valid):
        posm = tr["label"] == 1
        cols = {"user": tr["user"][posm], "item": tr["item"][posm], "time": tr["time"][posm], "place": tr["place"][posm]}
        if with_valid:
            cols = {"user": np.r_[cols["user"], vu], "item": np.r_[cols["item"], vi], "time": np.r_[cols["time"], vt],
                    "place": np.r_[cols["place"], vp]}
        return cols

    negm = tr["label"] == 0

    def check(c, hist, hist_mask, fbp, fbp_mask, fbn, fbn_mask, user, item, t):
        assert hist[hist_mask].tolist() == _naive_window(c["user"], c["item"], c["time"], c["place"], user, t, L)
        assert fbp[fbp_mask].tolist() == _naive_window(c["item"], c["user"], c["time"], c["place"], item, t, k)
        assert fbn[fbn_mask].tolist() == _naive_window(tr["item"][negm], tr["user"][negm], tr["time"][negm],
                                                       tr["place"][negm], item, t, k)
        # left padding: valid entries are a suffix
        for m in (hist_mask, fbp_mask, fbn_mask):
            assert not np.any(m[:-1] & ~m[1:])

    plain = columns(False)
    for r in range(0, len(tr["user"]), 7):
        check(plain, tr["hist"][r], tr["hist_mask"][r], tr["fb_pos"][r], tr["fb_pos_mask"][r], tr["fb_neg"][r],
              tr["fb_neg_mask"][r], tr["user"][r], tr["item"][r], tr["time"][r])
    for part in ("valid", "test"):
        ev = split.part(part)
        c = columns(part == "test")
        for e in range(len(ev["user"])):
            for j in range(ev["cand"].shape[1]):
                if not ev["cand_mask"][e, j]:
                    continue
                check(c, ev["hist"][e], ev["hist_mask"][e], ev["fb_pos"][e, j], ev["fb_pos_mask"][e, j],
                      ev["fb_neg"][e, j], ev["fb_neg_mask"][e, j], ev["user"][e], ev["cand"][e, j], ev["time"][e])


def test_test_context_holds_validation_events_only_when_asked_and_never_in_training(built):
    inter, split = built
    vu, vi, vt, vp = _validation_rows(inter)
    assert not set(vp.tolist()) & set(split.part("train")["place"].tolist())
    assert split.meta["test_context"] == "train+valid"
    te = split.part("test")
    own = {int(a): (int(b), int(c)) for a, b, c in zip(vu, vi, vt)}
    holds = [bool(np.any((te["hist"][e] == own[int(te["user"][e])][0]) & te["hist_mask"][e]))
             for e in range(len(te["user"]))]
    earlier = [own[int(te["user"][e])][1] < te["time"][e] for e in range(len(te["user"]))]
    assert sum(holds) > 0 and all(h <= e for h, e in zip(holds, earlier))
    assert split.meta["parts"]["test"]["n_histories_with_own_valid_item"] == sum(holds)
    off = loo.build(inter, dict(PARAMS, test_context_valid=False))
    assert off.meta["test_context"] == "train"
    # the synthetic log repeats (user, item) pairs, so an earlier training row can hold the item too
    assert off.meta["parts"]["test"]["n_histories_with_own_valid_item"] < sum(holds)
    for name in ("train/hist", "train/fb_pos", "valid/hist", "valid/fb_pos"):
        np.testing.assert_array_equal(off.arrays[name], split.arrays[name])


def test_no_window_contains_the_current_interaction(built):
    inter, split = built
    tr = split.part("train")
    positive = tr["label"] == 1
    own_user_in_pos = np.any((tr["fb_pos"] == tr["user"][:, None]) & tr["fb_pos_mask"], axis=1)
    own_item_in_hist = np.any((tr["hist"] == tr["item"][:, None]) & tr["hist_mask"], axis=1)
    # a user may have rated the item before (repeats in the synthetic log), so compare with strict-time truth
    for r in np.flatnonzero(own_user_in_pos & positive):
        earlier = (tr["item"] == tr["item"][r]) & (tr["user"] == tr["user"][r]) & (tr["time"] < tr["time"][r]) & positive
        assert earlier.any()
    for r in np.flatnonzero(own_item_in_hist):
        earlier = (tr["item"] == tr["item"][r]) & (tr["user"] == tr["user"][r]) & (tr["time"] < tr["time"][r]) & positive
        assert earlier.any()
    assert split.meta["tie_excluded_window_entries"]["history"] > 0  # the synthetic log has bursts


def test_tau_counts_training_rows_only():
    inter = synthetic(seed=3)
    base = loo.build(inter, PARAMS)
    counts = np.bincount(base.part("train")["item"][base.part("train")["label"] == 1], minlength=inter.n_items)
    np.testing.assert_array_equal(base.part("item")["tail"], counts < PARAMS["tau"])
    # a whole-log count would differ: held-out positives are real positives of their items
    whole = np.bincount(inter.item[inter.label == 1], minlength=inter.n_items)
    assert (whole > counts).any()
    assert base.meta["tail_item_share"] == pytest.approx((counts < PARAMS["tau"]).mean())


def test_candidates_exclude_user_positives_and_exist_at_event_time(built):
    inter, split = built
    pos_sets = {u: set(inter.item[(inter.user == u) & (inter.label == 1)].tolist()) for u in range(inter.n_users)}
    first = split.part("item")["first_train_time"].copy()
    _, vi, vt, _ = _validation_rows(inter)
    first_test = first.copy()
    np.minimum.at(first_test, vi, vt)  # the test context also holds the validation events
    for part, f in (("valid", first), ("test", first_test)):
        ev = split.part(part)
        for e in range(len(ev["user"])):
            negs = ev["cand"][e, 1:][ev["cand_mask"][e, 1:]]
            assert ev["cand"][e, 0] == ev["item"][e]
            assert not (set(negs.tolist()) & pos_sets[int(ev["user"][e])])
            assert len(set(negs.tolist())) == len(negs)
            assert np.all(f[ev["cand"][e][ev["cand_mask"][e]]] < ev["time"][e]), "the positive or a negative is new"


def test_candidates_all_option_draws_from_every_item():
    inter = synthetic(seed=5)
    split = loo.build(inter, dict(PARAMS, candidates="all"))
    ev = split.part("test")
    assert ev["cand_mask"].all()


def test_split_hash_is_stable_and_changes_with_every_parameter():
    inter = synthetic()
    h0 = loo.split_hash(inter.canonical_hash(), PARAMS)
    assert h0 == loo.split_hash(synthetic().canonical_hash(), dict(PARAMS))
    assert loo.build(inter, PARAMS).hash == h0
    changes = {"tau": 6, "n_negatives": 9, "candidates": "all", "history_len": 7, "feedback_len": 4,
               "test_context_valid": False, "min_prior_positives": 3, "train_negatives": 1, "split_seed": 1}
    assert set(changes) == set(loo.DEFAULTS)
    hashes = {loo.split_hash(inter.canonical_hash(), dict(PARAMS, **{k: v})) for k, v in changes.items()}
    assert h0 not in hashes and len(hashes) == len(changes)
    other = synthetic(seed=1)
    assert loo.split_hash(other.canonical_hash(), PARAMS) != h0


def test_split_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMO_BENCH_CACHE", str(tmp_path))
    inter = synthetic()
    first, cached = get_split(inter, "loo", SMALL)
    assert not cached
    second, cached = get_split(inter, "loo", SMALL)
    assert cached and second.hash == first.hash
    for name, arr in first.arrays.items():
        np.testing.assert_array_equal(arr, second.arrays[name])
    rebuilt = loo.build(inter, first.meta["params"])
    for name, arr in first.arrays.items():
        np.testing.assert_array_equal(arr, rebuilt.arrays[name])


def test_tampered_cache_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMO_BENCH_CACHE", str(tmp_path))
    inter = synthetic()
    get_split(inter, "loo", SMALL)
    path = next(tmp_path.rglob("*.npz"))
    data = dict(np.load(path))
    data["test/cand"] = data["test/cand"][::-1].copy()  # same meta (and recorded sha256), other content
    np.savez(path, **data)
    with pytest.raises(BenchError, match="does not match its recorded sha256"):
        get_split(inter, "loo", SMALL)


def test_the_leak_checks_catch_an_inclusive_window():
    """The released code's window (up to and including the current row) must fail the strict check."""
    from benchmark.protocols.windows import CausalIndex

    inter = synthetic()
    order = np.argsort(inter.time, kind="stable")
    u, i, t, y = inter.user[order], inter.item[order], inter.time[order], inter.label[order]
    pos = np.arange(len(u))
    p = y == 1
    index = CausalIndex(i[p], u[p], pos[p], t[p], inter.n_items)
    leaky = index.window(i[p], t[p], 10, pos[p], inclusive=True)
    strict = index.window(i[p], t[p], 10, pos[p])
    own_leaky = np.any((leaky.values == u[p][:, None]) & leaky.mask, axis=1)
    assert own_leaky.all(), "inclusive windows hold the current user for every positive row"
    own_strict = np.any((strict.values == u[p][:, None]) & strict.mask, axis=1)
    assert own_strict.mean() < 0.5


def test_windows_built_in_blocks_equal_one_block(monkeypatch):
    """`CausalIndex.window` works in blocks of queries so that 14M KuaiRand-scale rows do not need a 5.3 GiB int64
    temporary (issue 20); the blocks must not change a single value, mask bit or tie count (the split hash)."""
    import benchmark.protocols.windows as windows

    inter = synthetic(n_rows=2000)
    order = np.argsort(inter.time, kind="stable")
    u, i, t = inter.user[order], inter.item[order], inter.time[order]
    pos = np.arange(len(u))
    index = windows.CausalIndex(i, u, pos, t, inter.n_items)
    whole = index.window(i, t, 10, pos)
    monkeypatch.setattr(windows, "CHUNK", 7)
    blocks = index.window(i, t, 10, pos)
    assert np.array_equal(whole.values, blocks.values) and np.array_equal(whole.mask, blocks.mask)
    assert whole.tie_excluded == blocks.tie_excluded and whole.values.dtype == np.int32
    assert whole.mask.any() and not whole.mask.all()


def test_bad_protocol_parameters_are_named():
    with pytest.raises(BenchError, match="unknown parameter 'taux'"):
        loo.resolve_params({"taux": 3})
    with pytest.raises(BenchError, match="tau must be int"):
        loo.resolve_params({"tau": "3"})
    with pytest.raises(BenchError, match="candidates must be"):
        loo.resolve_params({"candidates": "some"})


def test_sampled_training_negatives_are_causal_unrated_and_carry_their_own_windows(built):
    """``train_negatives``: the rows every method trains on when the regime samples (issue 19): for each training
    positive, items that existed before its time and that its user never rated in the training period, with the
    positive's history and the sampled item's own causal windows; no real row, window or count moves."""
    inter, plain = built
    split = loo.build(inter, dict(PARAMS, train_negatives=2))
    tr, tr0 = split.part("train"), plain.part("train")
    real, fake = ~tr["sampled"], tr["sampled"]
    for key in tr0:  # the real rows, and every window of them, are exactly the plain split's
        assert np.array_equal(tr[key][real], tr0[key]), key
    for part in ("valid", "test", "item"):
        for key, value in plain.part(part).items():
            assert np.array_equal(split.part(part)[key], value), (part, key)
    assert np.all(tr["label"][fake] == 0) and np.all(np.diff(tr["place"]) >= 0)
    n_pos = int((tr0["label"] == 1).sum())
    assert split.meta["n_train_sampled_negatives"] == fake.sum() and 1.5 * n_pos <= fake.sum() <= 2 * n_pos
    u, i, t, _ = _total_order(inter)
    first = {}
    for uu, ii, tt in zip(tr0["user"], tr0["item"], tr0["time"]):
        first[ii] = min(first.get(ii, tt), tt)
    first_rated = {}
    for uu, ii, tt in zip(tr0["user"].tolist(), tr0["item"].tolist(), tr0["time"].tolist()):
        first_rated[(uu, ii)] = min(first_rated.get((uu, ii), tt), tt)
    later = 0
    by_place = {int(p): r for r, p in enumerate(tr0["place"]) if tr0["label"][r] == 1}
    posm = tr0["label"] == 1
    negm = tr0["label"] == 0
    k = PARAMS["feedback_len"]
    for r in np.flatnonzero(fake):
        user, item, time = int(tr["user"][r]), int(tr["item"][r]), tr["time"][r]
        src = by_place[int(tr["place"][r])]  # the positive it was drawn for
        assert tr0["user"][src] == user and tr0["time"][src] == time
        assert first[item] < time, "a sampled item that did not exist yet"
        assert item != tr0["item"][src], "the positive itself as its negative"
        assert first_rated.get((user, item), time) >= time, "a sampled item the user had rated before"
        later += (user, item) in first_rated  # rated only later: the draw did not read the future
        assert np.array_equal(tr["hist"][r], tr0["hist"][src]) and np.array_equal(tr["hist_mask"][r], tr0["hist_mask"][src])
        assert tr["fb_pos"][r][tr["fb_pos_mask"][r]].tolist() == _naive_window(
            tr0["item"][posm], tr0["user"][posm], tr0["time"][posm], tr0["place"][posm], item, time, k)
        assert tr["fb_neg"][r][tr["fb_neg_mask"][r]].tolist() == _naive_window(
            tr0["item"][negm], tr0["user"][negm], tr0["time"][negm], tr0["place"][negm], item, time, k)
    assert later > 0, "no sampled item is one the user rates later: the sampler reads later training rows"


def test_every_method_trains_on_the_same_rows_on_loo_by_default():
    """Version 1 of the CTR family drew one sampled item per positive on ``loo`` (``auto``) while every sequence
    method trained on the explicit labels alone: the one asymmetry that decided the paper table (issue 19)."""
    from types import SimpleNamespace

    from methods.deepfm import negatives_per_positive

    labelled, implicit = SimpleNamespace(meta={"implicit": False}), SimpleNamespace(meta={"implicit": True})
    assert negatives_per_positive("auto", labelled, "loo") == 0
    assert negatives_per_positive("auto", labelled, "warmup") == 0
    assert negatives_per_positive("auto", implicit, "cold") == 1  # all rows positive: a loss needs negatives
    assert negatives_per_positive(2, labelled, "loo") == 2  # still an option, declared as a variant
