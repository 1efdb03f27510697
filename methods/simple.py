"""Reference points with no learning: ``random`` and ``popular``.

random: uniform random scores (seeded). Its expected metrics are chance level, which makes it the
floor every table needs.

popular: the number of positives each item has in the *training rows only* (never validation or
test events, never the whole log). Cold items by definition have few, so this is the
popularity-bias yardstick of the cold-start literature (baselines.md, B11).
"""

from __future__ import annotations

from typing import Any

import torch

from benchmark.method import Method, TrainData


class RandomMethod(Method):
    """Uniform random scores, drawn from the trial's seeded generator."""

    name = "random"
    version = "1"

    def fit(self, data: TrainData) -> dict[str, Any]:
        return {}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        cand = batch["cand"]
        return torch.rand(cand.shape, generator=self.ctx.generator).to(cand.device)


class PopularMethod(Method):
    """Item popularity counted on training positives; ties are left as ties for the harness to break."""

    name = "popular"
    version = "1"

    def fit(self, data: TrainData) -> dict[str, Any]:
        self.counts = data.item_train_pos_count.to(torch.float32)
        return {"max_count": float(self.counts.max())}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.counts[batch["cand"]]
