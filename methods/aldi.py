"""ALDI (``aldi``): Huang, Wang, Chen, et al., "Aligning Distillation For Cold-start Item Recommendation",
SIGIR 2023; reference implementation ``zfnWong/ALDI`` (``cold_start/ALDI.py``, ``main.py``).

Students -- an item tower over content and a user tower over the teacher's user embedding -- are
trained with BPR plus three distillation terms from the warm teacher (the BPR-MF backbone): rating
(L1 between teacher and student scores), ranking (BCE toward the sigmoid of the teacher's score
difference) and identification (BCE toward the teacher's item self- versus cross-similarity gap).
At inference warm items are scored by the teacher, cold items by the students (as the reference).

Method card (paper, defaults, what we changed and why): docs/methods/aldi.md.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import Method, TrainData
from methods.item_offset import ItemOffsetWarmUp
from benchmark.training import train_epochs
from methods.coldstart import attach_backbone, layer_sizes


def student_tower(in_dim: int, hidden: list[int], out_dim: int) -> nn.Sequential:
    """FC -> BN -> tanh per hidden layer, then a linear output; truncated-normal(0.01) weights as the reference."""
    layers: list[nn.Module] = []
    for a, b in zip([in_dim, *hidden[:-1]], hidden[:-1]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.Tanh()]
    layers.append(nn.Linear(hidden[-2] if len(hidden) > 1 else in_dim, out_dim))
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.01, a=-0.02, b=0.02)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


class ALDINet(nn.Module):
    def __init__(self, emb_dim: int, content_dim: int, layers: list[int]) -> None:
        super().__init__()
        self.item = student_tower(content_dim, layers, emb_dim)
        self.user = student_tower(emb_dim, layers, emb_dim)


class ALDI(ItemOffsetWarmUp, Method):
    name = "aldi"
    patience_exception = ("the reference implementation's patience 10 (docs/methods/aldi.md)")
    uses = ("bpr-mf",)
    version = "1"
    requires = frozenset({"item_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    defaults = {"lr": 1e-3, "reg": 1e-4, "alpha": 0.9, "beta": 0.05, "gamma": 0.1, "tws": False,
                "freq_coef_a": 1.0, "freq_coef_M": 4.0, "layers": "200,200", "batch_size": 1024, "epochs": 1000,
                "patience": 10}
    budgets = {"quick": {"epochs": 3, "patience": 3}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        info = attach_backbone(self, data)
        layers = layer_sizes(o["layers"])
        self.net = ALDINet(self._items.shape[1], self.content.shape[1], layers).to(self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"])
        train, gen = data.train, self.ctx.generator
        freq = data.item_train_pos_count.float()
        linear_params = [m.weight for m in self.net.modules() if isinstance(m, nn.Linear)] + \
                        [m.bias for m in self.net.modules() if isinstance(m, nn.Linear)]

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            u, pos = train["user"][idx], train["item"][idx]
            neg = data.sample_negatives(len(idx), gen)  # warm items only
            t_user, t_pos, t_neg = self._users[u], self._items[pos], self._items[neg]
            s_items = self.net.item(self.content[torch.cat([pos, neg])])
            s_pos, s_neg = s_items[:len(idx)], s_items[len(idx):]
            s_user = self.net.user(t_user)
            s_pos_logit, s_neg_logit = (s_user * s_pos).sum(1), (s_user * s_neg).sum(1)
            s_rank = s_pos_logit - s_neg_logit
            supervised = F.binary_cross_entropy_with_logits(s_rank, torch.ones_like(s_rank))
            t_pos_logit, t_neg_logit = (t_user * t_pos).sum(1), (t_user * t_neg).sum(1)
            weight = (torch.tanh(o["freq_coef_a"] * freq[pos]).clamp(0, math.tanh(o["freq_coef_M"]))
                      if o["tws"] else torch.ones_like(s_rank))
            rank = o["alpha"] * (weight * F.binary_cross_entropy_with_logits(
                s_rank, torch.sigmoid(t_pos_logit - t_neg_logit), reduction="none")).mean()
            s_iden = (s_pos * s_pos).sum(1) - (s_pos @ s_neg.T).mean(1)
            t_iden = (t_pos * t_pos).sum(1) - (t_pos @ t_neg.T).mean(1)
            iden = o["beta"] * (weight * F.binary_cross_entropy_with_logits(
                s_iden, torch.sigmoid(t_iden), reduction="none")).mean()
            rating = o["gamma"] * ((t_pos_logit - s_pos_logit).abs() + (t_neg_logit - s_neg_logit).abs()).mean()
            reg = o["reg"] * sum(p.pow(2).sum() / 2 for p in linear_params)
            loss = supervised + rank + iden + rating + reg
            return loss, {"bpr": supervised.detach(), "rank": rank.detach(), "iden": iden.detach(),
                          "rating": rating.detach()}

        fit = train_epochs(self, self.net, opt, data.positive_batches(o["batch_size"], self.ctx.generator), step, o["epochs"],
                           o["patience"], "aldi epochs")
        return {**info, **fit}

    def _tables(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        self.net.eval()
        return self._users[users], self._items, self.net.user(self._users[users]), self.net.item(self.content)

    def _dot(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t_user, t_items, s_user, s_items = self._tables(users)
        warm = self.warm[items][:, None]
        return torch.where(warm, t_user, s_user), torch.where(warm, t_items[items], s_items[items])

    def score_all(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        t_user, t_items, s_user, s_items = self._tables(batch["user"])
        return torch.where(self.warm[None, :], t_user @ t_items.T, s_user @ s_items.T)

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        t_user, t_items, s_user, s_items = self._tables(batch["user"])
        cand = batch["cand"]
        teacher = torch.einsum("bd,bcd->bc", t_user, t_items[cand])
        student = torch.einsum("bd,bcd->bc", s_user, s_items[cand])
        return torch.where(self.warm[cand], teacher, student)
