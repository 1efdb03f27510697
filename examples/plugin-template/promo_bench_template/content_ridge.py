"""``content-ridge``: a content-regression baseline, as a worked example of a promo-bench plugin.

Each user has an embedding p_u; an item is represented only by a linear map of its content, q_i = W x_i, so
a cold item is scored exactly like a warm one. Trained with the BPR loss (Rendle et al., UAI 2009) against
one uniformly drawn training item per positive, plus L2 ("ridge") on p and W. Early stopping on the
harness's validation metric. No paper to follow: a deliberately simple floor for content-only methods.

Method card: the docstring is the card. Defaults: d = 32, lr 1e-3, reg 1e-4, batch 1024, up to 50 epochs,
patience 5; the ``quick`` budget runs 2 epochs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.method import Method, TrainData
from benchmark.training import train_epochs


class ContentRidge(Method):
    name = "content-ridge"  # must equal the entry-point name
    version = "1"  # bump when results would change: it is part of every trial's identity
    requires = frozenset({"item_features"})  # the harness refuses datasets that lack them
    protocols = frozenset({"loo", "cold"})  # sampled leave-one-out and strict new-item full ranking
    defaults = {"dim": 32, "lr": 1e-3, "reg": 1e-4, "batch_size": 1024, "epochs": 50, "patience": 5}
    budgets = {"quick": {"epochs": 2, "patience": 2}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        torch.manual_seed(self.ctx.seed)  # the harness seeds too; being explicit costs nothing
        self.content = data.item_features  # (n_items, F), already on the trial's device
        self.users = nn.Embedding(data.n_users, o["dim"]).to(self.device)
        self.proj = nn.Linear(self.content.shape[1], o["dim"], bias=False).to(self.device)
        nn.init.normal_(self.users.weight, std=0.1)
        self.model = nn.ModuleList([self.users, self.proj])
        opt = torch.optim.Adam(self.model.parameters(), lr=o["lr"])
        users, items = data.train["user"], data.train["item"]

        def step(idx: torch.Tensor) -> torch.Tensor:
            u, pos = users[idx].long(), items[idx].long()
            neg = data.sample_negatives(len(idx), self.ctx.generator)
            pu = self.users(u)
            diff = (pu * self.proj(self.content[pos])).sum(1) - (pu * self.proj(self.content[neg])).sum(1)
            reg = pu.pow(2).sum(1).mean() + self.proj.weight.pow(2).sum()
            return F.softplus(-diff).mean() + o["reg"] * reg

        batches = data.positive_batches(o["batch_size"], self.ctx.generator)
        return train_epochs(self, self.model, opt, batches, step, o["epochs"], o["patience"], "content-ridge")

    @torch.no_grad()
    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, C) scores for each event's candidates; higher is better."""
        q = self.proj(self.content[batch["cand"].long()])  # (B, C, d)
        return (q * self.users(batch["user"].long())[:, None, :]).sum(-1)
