"""CB2CF (``cb2cf``): O. Barkan, N. Koenigstein, E. Yogev, O. Katz, "CB2CF: A Neural Multiview Content-to-
Collaborative Filtering Model for Completely Cold Item Recommendations", RecSys 2019. As PROMO's authors ran it
([D], ``ClumsyInvoker/Rec2024`` ``models/CB2CF.py``; promo-spec section 8): the content-to-collaborative mapping
sits on the user side. A user's content vector is trained to land on the user's collaborative vector (the pooled
output of the pretrained SASRec over the causal history) by an auxiliary MSE, next to the ranking loss; scores use
the content vector only, against an item tower of id and content.

The collaborative target comes from the shared, frozen ``sasrec`` backbone (``ctx.fitted``), so it is the same
SASRec that ``sasrec``, ``dssm-sasrec``, ``ppr`` and PROMO use, and it never trains on the MSE.

Method card (paper, defaults, what we changed and why): docs/methods/cb2cf.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Float
from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.sasrec import SASRec


class CB2CFNet(nn.Module):
    def __init__(self, n_items: int, n_user_feat: int, n_item_feat: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.user_map = nn.Sequential(nn.Linear(n_user_feat, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.item_emb = nn.Embedding(n_items, dim)
        self.item_feat = nn.Linear(n_item_feat, dim)
        self.item_out = nn.Sequential(nn.Linear(2 * dim, dim, bias=False), nn.ReLU())  # [D]'s item_fc_layer
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)

    def item_vec(self, items: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.item_out(torch.cat([self.item_emb(items), self.item_feat(feats)], dim=-1))


class CB2CF(Method):
    name = "cb2cf"
    uses = ("sasrec",)
    version = "1"
    requires = frozenset({"history", "item_features", "user_features"})
    defaults = {"dim": 16, "hidden": 64, "mse_weight": 1.0, "lr": 1e-3, "batch_size": 128, "l2_emb": 0.01,
                "epochs": 20, "patience": 5, "audit_leak": False}
    budgets = {"quick": {"epochs": 2, "patience": 2}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "l2_emb": Float(1e-4, 1e-1, log=True),
                    "mse_weight": Float(0.1, 10.0, log=True)}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        sasrec: SASRec = self.ctx.fitted("sasrec", {"audit_leak": o["audit_leak"]})  # type: ignore[assignment]
        if sasrec.options["dim"] != o["dim"]:
            raise ValueError(f"cb2cf: dim {o['dim']} must equal the SASRec backbone's dim {sasrec.options['dim']}")
        self.uf, self.if_ = data.user_features, data.item_features
        self.net = CB2CFNet(data.n_items, self.uf.shape[1], self.if_.shape[1], o["dim"], o["hidden"]).to(self.device)
        train = data.train
        # the collaborative targets: the frozen SASRec's view of each row's causal history
        target = sasrec.history_vectors(train["hist"], train["hist_mask"])
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"], betas=(0.9, 0.98))

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            u, i = train["user"][idx], train["item"][idx]
            content = self.net.user_map(self.uf[u])
            rank = F.binary_cross_entropy_with_logits((content * self.net.item_vec(i, self.if_[i])).sum(-1),
                                                      train["label"][idx].float())
            mse = F.mse_loss(content, target[idx])
            l2 = o["l2_emb"] * torch.norm(self.net.item_emb.weight)
            return rank + o["mse_weight"] * mse + l2, {"rank": rank.detach(), "mse": mse.detach()}

        info = train_epochs(self, self.net, opt, lambda: train.index_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], "cb2cf epochs")
        return {**info, "sasrec": sasrec.fitted_info}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        u, cand = batch["user"], batch["cand"]
        return torch.einsum("bd,bcd->bc", self.net.user_map(self.uf[u]), self.net.item_vec(cand, self.if_[cand]))
