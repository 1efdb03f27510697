"""DeepMusic content regression (``deepmusic``): van den Oord, Dieleman, Schrauwen, "Deep content-based music
recommendation", NeurIPS 2013. An MLP maps item content onto the warm backbone's item embeddings (MSE);
cold items are scored with the mapped embedding. No official code; the MLP follows ColdRec ``model/DeepMusic.py``.

Method card (paper, defaults, what we changed and why): docs/methods/deepmusic.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.coldstart import TableScorer, attach_backbone, mlp, standardise


class DeepMusic(TableScorer, Method):
    name = "deepmusic"
    patience_exception = ("patience 10 predates the rule and matched the ColdRec comparison of issue 18; to "
                          "change with a rerun that measures it (--set deepmusic.patience=5)")
    uses = ("bpr-mf",)
    version = "1"
    requires = frozenset({"item_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    defaults = {"lr": 1e-3, "reg": 1e-4, "batch_size": 1024, "epochs": 100, "patience": 10}
    budgets = {"quick": {"epochs": 3, "patience": 3}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        info = attach_backbone(self, data)
        self.content = standardise(self.content, self.warm)
        d = self._items.shape[1]
        self.net = mlp([self.content.shape[1], 2 * d, d], act=nn.ReLU, batch_norm=False).to(self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"], weight_decay=0.0)
        items = data.train["item"]

        def step(idx: torch.Tensor) -> torch.Tensor:
            i = items[idx]  # items of training positives: popular items weigh more, as ColdRec
            pred = self.net(self.content[i])
            reg = sum(p.pow(2).sum() for p in self.net.parameters())
            return (pred - self._items[i]).pow(2).sum(1).mean() + o["reg"] * reg

        fit = train_epochs(self, self.net, opt, data.positive_batches(o["batch_size"], self.ctx.generator), step, o["epochs"],
                           o["patience"], "deepmusic epochs")
        return {**info, **fit}

    def user_vecs(self, users: torch.Tensor) -> torch.Tensor:
        return self._users[users]

    def item_vecs(self) -> torch.Tensor:
        return torch.where(self.warm[:, None], self._items, self.net(self.content))
