"""Reference points with no learning: ``random`` and ``popular``.

Method card (paper, defaults, what we changed and why): docs/methods/random.md and docs/methods/popular.md.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmark.method import Method, TrainData


class RandomMethod(Method):
    """Uniform random scores, drawn from the trial's seeded generator."""

    name = "random"
    version = "2"
    protocols = frozenset({"loo", "cold", "warmup"})  # 2: candidates reach score() shuffled, so the same seed draws other numbers

    def fit(self, data: TrainData) -> dict[str, Any]:
        return {}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        cand = batch["cand"]
        return torch.rand(cand.shape, generator=self.ctx.generator).to(cand.device)


class PopularMethod(Method):
    """Item popularity counted on training positives; ties are left as ties for the harness to break."""

    name = "popular"
    version = "1"
    protocols = frozenset({"loo", "cold", "warmup"})

    def fit(self, data: TrainData) -> dict[str, Any]:
        self.counts = data.item_train_pos_count.to(torch.float32)
        return {"max_count": float(self.counts.max())}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.counts[batch["cand"]]

    def score_all(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.counts[None, :].expand(len(batch["user"]), -1)
