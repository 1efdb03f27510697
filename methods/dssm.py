"""DSSM two-tower model of ID plus content features (``dssm``), as in PROMO's released backbone.

Method card (paper, defaults, what we changed and why): docs/methods/dssm.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Choice, Float
from benchmark.method import Method, TrainData
from methods.item_offset import ItemOffsetWarmUp
from benchmark.training import train_epochs


class DSSMNet(nn.Module):
    """The two towers; reused by PROMO's backbone."""

    def __init__(self, n_users: int, n_items: int, n_user_feat: int, n_item_feat: int, dim: int,
                 extra_user_dim: int = 0) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        self.user_feat = nn.Linear(n_user_feat, dim)
        self.item_feat = nn.Linear(n_item_feat, dim)
        self.user_out = nn.Linear(2 * dim + extra_user_dim, dim, bias=False)  # + SASRec's s_u in dssm-sasrec
        self.item_out = nn.Linear(2 * dim, dim, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)

    def user_vec(self, users: torch.Tensor, feats: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        parts = [self.user_emb(users), self.user_feat(feats)] + ([extra] if extra is not None else [])
        return self.user_out(torch.cat(parts, dim=-1))

    def item_vec(self, items: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.item_out(torch.cat([self.item_emb(items), self.item_feat(feats)], dim=-1))

    def l2_emb(self) -> torch.Tensor:
        return torch.norm(self.user_emb.weight) + torch.norm(self.item_emb.weight)


class DSSM(ItemOffsetWarmUp, Method):
    name = "dssm"
    version = "2"  # 2: patience 5 (the one rule, benchmark/method.py PATIENCE), was 20 = every epoch
    protocols = frozenset({"loo", "cold", "warmup"})
    requires = frozenset({"item_features", "user_features"})
    defaults = {"dim": 16, "lr": 1e-3, "batch_size": 128, "l2_emb": 0.01, "epochs": 20, "patience": 5}
    budgets = {"quick": {"epochs": 2, "patience": 2}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "l2_emb": Float(1e-4, 1e-1, log=True),
                    "dim": Choice((16, 32, 64))}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        self.uf, self.if_ = data.user_features, data.item_features
        self.net = DSSMNet(data.n_users, data.n_items, self.uf.shape[1], self.if_.shape[1], o["dim"]).to(self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"], betas=(0.9, 0.98))
        train = data.train

        implicit = bool(data.meta.get("implicit"))

        def step(idx: torch.Tensor) -> torch.Tensor:
            u, i, y = train["user"][idx], train["item"][idx], train["label"][idx].float()
            if implicit:  # positives only (cold protocol): one sampled warm negative per positive
                j = data.sample_negatives(len(idx), self.ctx.generator)
                u, i, y = torch.cat([u, u]), torch.cat([i, j]), torch.cat([y, torch.zeros_like(y)])
            logits = (self.net.user_vec(u, self.uf[u]) * self.net.item_vec(i, self.if_[i])).sum(-1)
            return F.binary_cross_entropy_with_logits(logits, y) + o["l2_emb"] * self.net.l2_emb()

        return train_epochs(self, self.net, opt, lambda: train.index_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], "dssm epochs")

    calibrated = True  # trained with log-loss on labelled rows outside the implicit protocols

    def _dot(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.net.eval()
        return self.net.user_vec(users, self.uf[users]), self.net.item_vec(items, self.if_[items])

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        u, cand = batch["user"], batch["cand"]
        uv = self.net.user_vec(u, self.uf[u])  # (B, d)
        iv = self.net.item_vec(cand, self.if_[cand])  # (B, C, d)
        return torch.einsum("bd,bcd->bc", uv, iv)

    def score_all(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        u = batch["user"]
        items = torch.arange(len(self.if_), device=u.device)
        return self.net.user_vec(u, self.uf[u]) @ self.net.item_vec(items, self.if_).T
