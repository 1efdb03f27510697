import math

import numpy as np
import pytest
import torch

from benchmark import metrics as M


def test_hand_computed_ranks_without_ties():
    # positive ranked 0, 3 and 12 (0-based): s = 0, 3, 12, no ties
    s, e = np.array([0, 3, 12]), np.zeros(3, dtype=int)
    assert M.metric_from_counts("hr@5", s, e).tolist() == [1.0, 1.0, 0.0]
    assert M.metric_from_counts("hr@10", s, e).tolist() == [1.0, 1.0, 0.0]
    np.testing.assert_allclose(M.metric_from_counts("ndcg@10", s, e), [1.0, 1 / math.log2(5), 0.0])
    np.testing.assert_allclose(M.metric_from_counts("mrr", s, e), [1.0, 0.25, 1 / 13])


def test_ties_average_over_the_tied_positions():
    # 4 candidates above, 2 tied: the positive is at rank 4, 5 or 6 with equal chance
    s, e = np.array([4]), np.array([2])
    assert M.metric_from_counts("hr@5", s, e)[0] == pytest.approx(1 / 3)
    assert M.metric_from_counts("ndcg@10", s, e)[0] == pytest.approx(
        (1 / math.log2(6) + 1 / math.log2(7) + 1 / math.log2(8)) / 3)
    assert M.metric_from_counts("mrr", s, e)[0] == pytest.approx((1 / 5 + 1 / 6 + 1 / 7) / 3)


def test_constant_scores_give_exact_chance_level():
    scores = torch.ones(7, 101)
    mask = torch.ones(7, 101, dtype=torch.bool)
    s, e = M.rank_counts(scores, mask)
    assert s.tolist() == [0] * 7 and e.tolist() == [100] * 7
    hr10 = M.metric_from_counts("hr@10", s.numpy(), e.numpy())
    np.testing.assert_allclose(hr10, 10 / 101)
    ndcg10 = M.metric_from_counts("ndcg@10", s.numpy(), e.numpy())
    np.testing.assert_allclose(ndcg10, sum(1 / math.log2(r + 2) for r in range(10)) / 101)
    np.testing.assert_allclose(M.metric_from_counts("mrr", s.numpy(), e.numpy()),
                               sum(1 / (r + 1) for r in range(101)) / 101)


def test_rank_counts_ignores_masked_candidates_and_rejects_nan():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.1, 0.9]])
    mask = torch.tensor([[True, True, True, True, False]])
    s, e = M.rank_counts(scores, mask)
    assert (s.item(), e.item()) == (1, 1)
    with pytest.raises(ValueError, match="NaN"):
        M.rank_counts(torch.tensor([[float("nan"), 1.0]]), torch.ones(1, 2, dtype=torch.bool))


def test_summarise_splits_cold_and_warm_targets():
    per = {"hr@10": np.array([1.0, 0.0, 1.0, 1.0])}
    cold = np.array([True, True, False, False])
    out = M.summarise(per, {"all": np.ones(4, dtype=bool), "cold-model": cold, "warm-model": ~cold})
    assert out["all"]["hr@10"] == 0.75 and out["cold-model"]["hr@10"] == 0.5 and out["warm-model"]["hr@10"] == 1.0
    assert out["cold-model"]["n_events"] == 2
    assert M.summarise(per, {"cold-model": np.zeros(4, dtype=bool)})["cold-model"]["hr@10"] is None


def test_recall_equals_hr_with_one_relevant_item_and_unknown_metrics_are_refused():
    s, e = np.array([0, 3, 12]), np.array([0, 2, 0])
    assert np.array_equal(M.metric_from_counts("recall@10", s, e), M.metric_from_counts("hr@10", s, e))
    with pytest.raises(ValueError, match="unknown metric 'map@10'"):
        M.metric_from_counts("map@10", s, e)
