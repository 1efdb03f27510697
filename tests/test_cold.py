"""The strict new-item ``cold`` protocol: split structure, leak rules, and full-ranking metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from benchmark.errors import BenchError
from benchmark.fullrank import FullRankPart, evaluate, metrics_from_scores
from benchmark.protocols import cold, get_split
from benchmark.views import SplitViews
from tests.conftest import synthetic

PARAMS = dict(cold.DEFAULTS)


def _inter():
    return synthetic(n_users=60, n_items=80, n_rows=3000, seed=3)


def _split(**over):
    params = cold.resolve_params({}, over)
    return cold.build(_inter(), params)


def test_no_cold_item_reaches_training_and_statistics_come_from_training_rows():
    split = _split()
    kind = split.arrays["item/kind"]
    train_items = split.arrays["train/item"]
    assert not np.isin(train_items, np.flatnonzero(kind >= 2)).any()
    assert (np.bincount(train_items, minlength=len(kind)) == split.arrays["item/train_pos_count"]).all()
    assert ((split.arrays["item/train_pos_count"] > 0) == (kind == 1)).all()  # every warm item has training rows
    first = np.full(len(kind), np.iinfo(np.int64).max)
    np.minimum.at(first, train_items, split.arrays["train/time"])
    assert (split.arrays["item/first_train_time"] == first).all()  # from training rows, never held-out ones
    order = np.argsort(_inter().time, kind="stable")
    assert (_inter().time[order][split.arrays["train/place"]] == split.arrays["train/time"]).all()  # total-order place
    # validation cold items are never test cold items, and each part's cold rows use its own items
    assert set(np.flatnonzero(kind == 2)).isdisjoint(np.flatnonzero(kind == 3))
    for part, code in (("valid", 2), ("test", 3)):
        ev = split.part(part)
        assert (kind[ev["item"][ev["cold"]]] == code).all()
        assert (kind[ev["item"][~ev["cold"]]] == 1).all()
        assert np.isin(ev["user"], split.arrays["train/user"]).all()  # evaluated users have training rows


def test_rows_are_unique_positive_pairs_split_once():
    inter = _inter()
    split = _split()
    pairs = []
    for part in ("train", "valid", "test"):
        p = split.part(part)
        pairs += list(zip(p["user"].tolist(), p["item"].tolist()))
    assert len(pairs) == len(set(pairs))
    positive = set(zip(inter.user[inter.label == 1].tolist(), inter.item[inter.label == 1].tolist()))
    assert set(pairs) == positive  # nothing lost: every positive pair is somewhere (cold users aside, none here)
    assert split.meta["n_duplicate_positives_dropped"] > 0  # the synthetic log repeats pairs


def test_cold_share_and_warm_shares():
    split = _split()
    m = split.meta
    assert m["n_cold_items"] == round(0.2 * m["n_items_with_positives"])
    assert abs(m["n_cold_valid_items"] - m["n_cold_test_items"]) <= 1
    warm_rows = m["n_train_rows"] + m["parts"]["valid"]["n_warm_rows"] + m["parts"]["test"]["n_warm_rows"]
    assert m["parts"]["test"]["n_warm_rows"] <= round(0.1 * warm_rows) + 1
    assert m["n_train_rows"] >= 0.8 * warm_rows - 1


def test_cold_by_time_takes_the_newest_items_and_tests_on_the_newer_half():
    inter = _inter()
    split = _split(cold_by="time")
    kind = split.arrays["item/kind"]
    pos = inter.label == 1
    first = np.full(inter.n_items, np.iinfo(np.int64).max)
    np.minimum.at(first, inter.item[pos], inter.time[pos])
    assert first[kind >= 2].min() >= first[kind == 1].max()
    assert first[kind == 3].min() >= first[kind == 2].max()


def test_split_is_frozen_hashed_and_seeded():
    inter = _inter()
    a, cached = get_split(inter, "cold")
    b, cached_again = get_split(inter, "cold")
    assert not cached and cached_again and a.hash == b.hash
    c, _ = get_split(inter, "cold", {"split_seed": 1})
    assert c.hash != a.hash
    assert not np.array_equal(c.arrays["item/kind"], a.arrays["item/kind"])


def test_bad_parameters_name_the_field():
    with pytest.raises(BenchError, match="cold_by"):
        cold.resolve_params({}, {"cold_by": "newest"})
    with pytest.raises(BenchError, match="cold_share"):
        cold.resolve_params({}, {"cold_share": 1.5})
    with pytest.raises(BenchError, match="unknown parameter 'tau'"):
        cold.resolve_params({"tau": 3}, {})


def test_negative_pool_never_holds_a_cold_item():
    inter = _inter()
    split = _split()
    data = SplitViews(split, inter, torch.device("cpu")).train()
    cold_items = set(np.flatnonzero(split.arrays["item/kind"] >= 2).tolist())
    assert cold_items.isdisjoint(data.negative_items.tolist())
    drawn = data.sample_negatives(5000, torch.Generator().manual_seed(0))
    assert cold_items.isdisjoint(drawn.tolist())
    assert data.meta["implicit"] and "parts" not in data.meta


# ---------------------------------------------------------------- full-ranking metrics


def _brute(scores, rel, valid, k):
    """Expected Recall/NDCG/HR@k over every order of tied items (exhaustive)."""
    idx = [j for j in range(len(scores)) if valid[j]]
    groups = [[j for j in idx if scores[j] == v] for v in sorted({scores[j] for j in idx}, reverse=True)]
    n_rel = sum(rel[j] for j in idx)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(n_rel, k)))
    tot = {"recall": 0.0, "ndcg": 0.0, "hr": 0.0}
    count = 0
    for perms in itertools.product(*[list(itertools.permutations(g)) for g in groups]):
        top = [x for p in perms for x in p][:k]
        hits = sum(rel[j] for j in top)
        tot["recall"] += hits / n_rel
        tot["hr"] += hits > 0
        tot["ndcg"] += sum(1 / math.log2(r + 2) for r, j in enumerate(top) if rel[j]) / idcg
        count += 1
    return {m: v / count for m, v in tot.items()}


def test_tie_rule_matches_exhaustive_enumeration():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(2, 8))
        scores = rng.integers(0, 3, n).astype(np.float32)
        valid = rng.random(n) < 0.8
        rel = (rng.random(n) < 0.4) & valid
        if not rel.any():
            continue
        k = int(rng.integers(1, 4))
        out, n_rel = metrics_from_scores(torch.tensor(scores[None]), torch.tensor(rel[None]), torch.tensor(valid[None]),
                                         ks=(k,))
        expect = _brute(scores.tolist(), rel.tolist(), valid.tolist(), k)
        for m, v in expect.items():
            assert out[f"{m}@{k}"].item() == pytest.approx(v, abs=1e-9), (scores, rel, valid, k, m)
        assert int(n_rel) == rel.sum()
        checked += 1
    assert checked > 150


def test_constant_scores_give_chance_level():
    n, k = 50, 10
    rel = torch.zeros(1, n, dtype=torch.bool)
    rel[0, [3, 7]] = True
    out, _ = metrics_from_scores(torch.zeros(1, n), rel, torch.ones(1, n, dtype=torch.bool), ks=(k,))
    assert out["recall@10"].item() == pytest.approx(k / n)
    assert out["hr@10"].item() == pytest.approx(1 - math.comb(n - 2, k) / math.comb(n, k))


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics_from_scores(torch.tensor([[0.0, float("nan")]]), torch.ones(1, 2, dtype=torch.bool),
                            torch.ones(1, 2, dtype=torch.bool))


class _Oracle:
    """Scores the part's relevant items highest and every training positive even higher (they must be masked)."""

    name = "oracle"

    def __init__(self, split, part: str, n_items: int) -> None:
        self.table = torch.zeros(split.meta["n_users"], n_items)
        ev = split.part(part)
        self.table[torch.from_numpy(ev["user"]).long(), torch.from_numpy(ev["item"]).long()] = 1.0
        tr = split.part("train")
        self.table[torch.from_numpy(tr["user"]).long(), torch.from_numpy(tr["item"]).long()] = 2.0

    def score_all(self, batch):
        return self.table[batch["user"]]


def test_full_ranking_masks_seen_items_and_counts_users_per_candidate_set():
    inter = _inter()
    split = _split()
    fr = FullRankPart.build(split, "test", torch.device("cpu"))
    rows = evaluate(_Oracle(split, "test", inter.n_items), fr, batch_size=7)
    assert rows["ndcg@20"] == pytest.approx(np.ones(len(rows["user"])))
    assert rows["hr@10"] == pytest.approx(np.ones(len(rows["user"])))
    parts = split.meta["parts"]["test"]
    for code, subset in enumerate(("all", "cold", "warm")):
        assert (rows["subset"] == code).sum() == parts[f"n_users_{subset}"]
    # a validation oracle is no oracle at test: the parts do not share relevant items
    wrong = evaluate(_Oracle(split, "valid", inter.n_items), fr)
    assert wrong["ndcg@20"][wrong["subset"] == 1].max() < 1.0


def test_ml100k_cold_split_counts(embedded_available):
    from benchmark.data.loader import load_dataset

    split, _ = get_split(load_dataset("ml-100k"), "cold")
    m = split.meta
    assert (m["n_warm_items"], m["n_cold_valid_items"], m["n_cold_test_items"]) == (1158, 144, 145)
    assert m["n_train_rows"] == 35668 and m["n_positive_pairs"] == 55375
    assert m["parts"]["test"]["n_users_all"] == 924
