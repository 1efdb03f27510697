"""Reference points with no learning: ``random`` and ``popular``.

Method card (paper, defaults, what we changed and why): docs/methods/random.md and docs/methods/popular.md.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmark.method import Method, TrainData
from benchmark.protocols import PROTOCOLS
from methods.popularity import CausalPopularity


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
    """Item popularity: training positives, as of each event's time where the protocol gives one.

    ``count = causal`` (default): on ``loo`` an event at time t scores each candidate by its training positives
    strictly before t (methods/popularity.py), so no later row reaches the score; protocols without event
    times (``cold``'s full ranking, ``warmup``'s rows) have no "before" to count, so the whole training count is
    used there. ``count = whole``: the whole training period everywhere (version 1's score, which on ``loo`` reads
    other users' later training rows). Ties are left as ties for the harness to break.
    """

    name = "popular"
    version = "2"  # 2: causal counts on loo
    protocols = frozenset({"loo", "cold", "warmup"})
    defaults = {"count": "causal"}
    option_ranges = {"count": ("causal", "whole")}

    def fit(self, data: TrainData) -> dict[str, Any]:
        if self.options["count"] not in ("causal", "whole"):
            raise ValueError(f"popular: option count={self.options['count']!r}: expected causal or whole")
        self.counts = data.item_train_pos_count.to(torch.float32)
        timed = PROTOCOLS[self.ctx.protocol].EVALUATION == "sampled" and "time" in data.train  # events have times
        self.causal = CausalPopularity(data) if self.options["count"] == "causal" and timed else None
        return {"max_count": float(self.counts.max()), "count": "causal" if self.causal is not None else "whole"}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.causal is not None and "time" in batch:
            return self.causal.counts(batch["cand"].long(), batch["time"][:, None]).to(torch.float32)
        return self.counts[batch["cand"]]

    def score_all(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.counts[None, :].expand(len(batch["user"]), -1)
