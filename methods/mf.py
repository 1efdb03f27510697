"""BPR matrix factorisation (``bpr-mf``): Rendle et al., UAI 2009; reference implementation RecBole's ``BPR``.

Method card (paper, defaults, what we changed and why): docs/methods/bpr-mf.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import Method, TrainData
from benchmark.training import train_epochs


class BPRMF(Method):
    name = "bpr-mf"
    version = "1"
    defaults = {"dim": 64, "lr": 1e-3, "reg": 1e-5, "batch_size": 1024, "epochs": 200, "patience": 10}
    budgets = {"quick": {"epochs": 5, "patience": 5}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        self.user_emb = nn.Embedding(data.n_users, o["dim"]).to(self.device)
        self.item_emb = nn.Embedding(data.n_items, o["dim"]).to(self.device)
        nn.init.xavier_normal_(self.user_emb.weight)
        nn.init.xavier_normal_(self.item_emb.weight)
        model = nn.ModuleList([self.user_emb, self.item_emb])
        opt = torch.optim.Adam(model.parameters(), lr=o["lr"])
        train = data.train
        positives = torch.nonzero(train["label"] > 0).squeeze(1)

        def step(idx: torch.Tensor) -> torch.Tensor:
            u, i = train["user"][idx], train["item"][idx]
            j = torch.randint(0, data.n_items, (len(idx),), generator=self.ctx.generator).to(self.device)
            eu, ei, ej = self.user_emb(u), self.item_emb(i), self.item_emb(j)
            diff = (eu * ei).sum(-1) - (eu * ej).sum(-1)
            reg = (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()) / len(idx)
            return -F.logsigmoid(diff).mean() + o["reg"] * reg

        info = train_epochs(self, model, opt, lambda: train.index_batches(o["batch_size"], self.ctx.generator,
                                                                          rows=positives),
                            step, o["epochs"], o["patience"], "bpr-mf epochs")
        return {**info, "n_train_positives": int(len(positives))}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        eu = self.user_emb(batch["user"])  # (B, d)
        ei = self.item_emb(batch["cand"])  # (B, C, d)
        return torch.einsum("bd,bcd->bc", eu, ei)
