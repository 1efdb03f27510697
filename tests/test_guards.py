"""Guards against one-line breakages that no other test caught (issue 16, part 5): each test here fails when the
named line is broken, and says so in its docstring."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from benchmark.fullrank import FullRankPart, evaluate
from benchmark.protocols import cold
from benchmark.training import train_epochs
from tests.conftest import synthetic


def _cold_split():
    return cold.build(synthetic(n_users=60, n_items=80, n_rows=3000, seed=3), cold.resolve_params({}, {}))


class _Table:
    """score_all from a fixed (n_users, n_items) table."""

    name = "table"

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table

    def score_all(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.table[batch["user"]]


def test_full_ranking_masks_validation_positives_at_test():
    """Breaks when fullrank.FullRankPart.build stops adding the validation rows to the test part's seen items:
    a method that ranks each user's validation items first would then lose test metrics it should not."""
    split = _cold_split()
    n_users, n_items = split.meta["n_users"], split.meta["n_items"]
    fr = FullRankPart.build(split, "test", torch.device("cpu"))
    base = torch.rand(n_users, n_items, generator=torch.Generator().manual_seed(0))
    va = split.part("valid")
    assert len(va["user"]) > 0
    high, low = base.clone(), base.clone()
    high[torch.from_numpy(va["user"]).long(), torch.from_numpy(va["item"]).long()] = 10.0
    low[torch.from_numpy(va["user"]).long(), torch.from_numpy(va["item"]).long()] = -10.0
    a, b = evaluate(_Table(high), fr), evaluate(_Table(low), fr)
    for metric in ("recall@20", "ndcg@20", "hr@10"):
        np.testing.assert_array_equal(a[metric], b[metric])


def test_test_candidates_never_hold_a_cold_validation_item():
    """Breaks when the test part's "all" (or "cold") candidate set takes the cold validation items."""
    split = _cold_split()
    kind = split.arrays["item/kind"]  # 1 warm, 2 cold validation, 3 cold test
    fr = FullRankPart.build(split, "test", torch.device("cpu"))
    for subset, want in (("all", (1, 3)), ("cold", (3,)), ("warm", (1,))):
        np.testing.assert_array_equal(fr.candidates[subset].numpy(), np.isin(kind, want), err_msg=subset)
    fv = FullRankPart.build(split, "valid", torch.device("cpu"))
    np.testing.assert_array_equal(fv.candidates["all"].numpy(), np.isin(kind, (1, 2)))


class _Scripted:
    """A 'method' whose validation values follow a script, with a one-parameter model that moves every epoch."""

    def __init__(self, curve: list[float]) -> None:
        self.model = torch.nn.Linear(1, 1, bias=False)
        self.curve = list(curve)
        self.seen: list[float] = []

        def validate(_m: Any) -> float:
            self.seen.append(float(self.model.weight.item()))
            return self.curve[len(self.seen) - 1]

        from benchmark.method import TrialContext

        self.ctx = TrialContext(device=torch.device("cpu"), seed=0, budget="quick", generator=torch.Generator(),
                                validate=validate, progress=lambda it, d: iter(it), fitted=None)


def test_early_stopping_restores_the_best_epoch_not_the_last():
    """Breaks when training.train_epochs stops calling EarlyStopping.restore() (the last epoch would be kept)."""
    m = _Scripted([0.1, 0.5, 0.3, 0.2, 0.1])
    opt = torch.optim.SGD(m.model.parameters(), lr=0.1)

    def step(idx: torch.Tensor) -> torch.Tensor:
        return m.model(torch.ones(1, 1)).sum()  # the weight falls by 0.1 every step

    info = train_epochs(m, m.model, opt, lambda: [torch.zeros(1)], step, epochs=10, patience=3, desc="test")
    assert info["best_epoch"] == 1 and info["epochs_run"] == 5
    assert m.model.weight.item() == pytest.approx(m.seen[1]) and m.seen[1] != pytest.approx(m.seen[-1])


def _store_with_seeds(tmp_path):
    from tests.test_report import crafted_store

    return crafted_store(tmp_path)


def test_tables_apply_holm_and_mark_only_holm_significant_differences(tmp_path):
    """Breaks when build_table stops calling apply_holm (raw p-values would decide the marks)."""
    from benchmark.stats import holm
    from tests.test_report import table_for

    table = table_for(_store_with_seeds(tmp_path))
    tested = [c for c in table.comparisons if c.testable]
    assert len(tested) >= 2
    np.testing.assert_allclose([c.p_holm for c in tested], holm([c.p for c in tested]))
    assert all(c.significant == (c.p_holm < table.alpha) for c in tested)
    assert any(c.significant for c in tested)  # the crafted reference wins: the marks are exercised


def test_cells_average_seeds_and_tests_use_the_seed_mean(tmp_path):
    """Breaks when the report takes one seed (seed 0) instead of the mean over seeds, in a cell or in the test."""
    from benchmark import metrics as M
    from benchmark.report.events import EventCache, group_trials, rows_by_table
    from benchmark.report.table import build_table
    from benchmark.store import ResultStore
    from tests.test_report import write_trial

    rng = np.random.default_rng(7)
    n = 120
    store = ResultStore(tmp_path / "results")
    cold_flags = rng.random(n) < 0.4
    hits = {"promo": [rng.random(n) < p for p in (0.2, 0.6, 0.9)], "popular": [rng.random(n) < 0.5 for _ in range(3)]}
    for method, per_seed in hits.items():
        for seed, h in enumerate(per_seed):
            write_trial(store, method, seed, h, cold_flags)
    (rows,) = rows_by_table(group_trials(store)).values()
    table = build_table(rows, EventCache(store), split="test", subset="all", metrics=["hr@10"], reference="promo")
    by = {r.label: r for r in table.rows}
    for method, per_seed in hits.items():
        expected = np.mean([M.metric_from_counts("hr@10", np.where(h, 0, 50), np.zeros(n, int)).mean()
                            for h in per_seed])
        assert table.cells[(by[method], 0)].mean == pytest.approx(expected)
        assert table.cells[(by[method], 0)].n_seeds == 3
    (cmp,) = table.comparisons
    mean_promo = np.mean([h.astype(float) for h in hits["promo"]], axis=0)
    assert cmp.mean_a == pytest.approx(mean_promo.mean()) and cmp.n_events == n
