"""Meta Warm Up Framework (``mwuf``): Zhu, Xie, Zhuang, Ge, Xiao, He, "Learning to Warm Up Cold Item Embeddings
for Cold-start Recommendation with Meta Scaling and Shifting Networks", SIGIR 2021. No official code; the
structure follows the widely used port ``BestActionNow/CVAR`` ``model/warm.py::MWUF`` (hidden 16, alternating
updates), with its item->users map rebuilt correctly (the port swaps user and item ids) and from the rows a
method may see: training rows, then the warm-up rows shown so far. Nothing is cached on disk.

A new item's embedding is ``scale(content) * e_i + shift(mean embedding of the users who interacted with it)``,
where ``e_i`` starts at the mean of the trained item embeddings. Training on old items alternates a step on
the cold embeddings ``e`` (log-loss with ``e`` alone) and a step on the two meta networks (log-loss with the
warmed embedding), the backbone frozen. During warm-up ``e_i`` is the item-side parameter that learns, and
the shift reads the item's growing set of users.

Method card (paper, defaults, what we changed and why): docs/methods/mwuf.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import TrainData
from benchmark.training import train_epochs
from methods.deepfm_warm import DeepFMWarmBase


def mean_user_embedding(user_emb: torch.Tensor, users: torch.Tensor, items: torch.Tensor,
                        n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_items, d) mean embedding of each item's interacting users (one term per row), and (n_items,) row
    counts; zero rows for items without any. ``users[r]`` interacted with ``items[r]``."""
    d = user_emb.shape[1]
    total = torch.zeros(n_items, d, device=user_emb.device).index_add_(0, items, user_emb[users])
    counts = torch.bincount(items, minlength=n_items)
    return total / counts.clamp(min=1)[:, None].to(total.dtype), counts


class MWUFParts(nn.Module):
    def __init__(self, n_items: int, d: int, n_content: int, hidden: int, init_emb: torch.Tensor) -> None:
        super().__init__()
        self.cold_emb = nn.Parameter(init_emb.expand(n_items, d).clone())
        self.meta_scale = nn.Sequential(nn.Linear(n_content, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.meta_shift = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, d))
        for net in (self.meta_scale, self.meta_shift):  # as the port's init_meta
            for p in net.parameters():
                nn.init.uniform_(p, -0.01, 0.01)


class MWUF(DeepFMWarmBase):
    name = "mwuf"
    version = "1"
    defaults = {"lr": 1e-3, "weight_decay": 1e-6, "batch_size": 2048, "hidden": 16, "epochs": 50, "patience": 5,
                "multi_hot": "mean"}
    budgets = {"quick": {"epochs": 3, "patience": 3}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        info = self.attach(data)
        net = self.net
        d = net.item_id.embedding_dim
        seen = ~self.new
        init = net.item_id.weight[seen].mean(0, keepdim=True)
        self.parts = MWUFParts(data.n_items, d, net.item_fields.n_fields * d, o["hidden"], init).to(self.device)
        train = data.train
        self.users_mean, self.users_n = mean_user_embedding(net.user_id.weight, train["user"], train["item"],
                                                            data.n_items)
        cold_opt = torch.optim.Adam([self.parts.cold_emb], lr=o["lr"], weight_decay=o["weight_decay"])
        meta_params = list(self.parts.meta_scale.parameters()) + list(self.parts.meta_shift.parameters())
        meta_opt = torch.optim.Adam(meta_params, lr=o["lr"], weight_decay=o["weight_decay"])

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            u, i, y = train["user"][idx], train["item"][idx], train["label"][idx].float()
            cold_loss = F.binary_cross_entropy_with_logits(net(u, i, self.parts.cold_emb.index_select(0, i)), y)
            cold_opt.zero_grad()
            cold_loss.backward()
            cold_opt.step()
            warm_loss = F.binary_cross_entropy_with_logits(net(u, i, self.warm_embedding(i)), y)
            return warm_loss, {"cold_loss": cold_loss.detach()}  # train_epochs steps the meta networks

        fit = train_epochs(self, self.parts, meta_opt,
                           lambda: train.index_batches(o["batch_size"], self.ctx.generator), step, o["epochs"],
                           o["patience"], "mwuf epochs")
        return {**info, **fit}

    _warming = False

    def warm_embedding(self, items: torch.Tensor) -> torch.Tensor:
        """scale(content) * e_i + shift(mean user embedding). Meta-training detaches e_i (as the port); during
        warm-up e_i is what learns."""
        content = self.net.item_content(items).detach()
        scale = self.parts.meta_scale(content)
        shift = self.parts.meta_shift(self.users_mean[items].detach())
        e = self.parts.cold_emb.index_select(0, items)  # deterministic backward (methods/ctr.py)
        return scale * (e if self._warming else e.detach()) + shift

    def item_embedding(self, items: torch.Tensor) -> torch.Tensor:
        return torch.where(self.new[items][:, None], self.warm_embedding(items), self.net.item_id(items))

    def warm_loss(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        self._warming = True
        try:
            return super().warm_loss(rows)
        finally:
            self._warming = False

    def warm_parameters(self) -> list[torch.Tensor]:
        return [self.parts.cold_emb, self.net.item_id_linear.weight]

    def observe(self, rows: dict[str, torch.Tensor]) -> None:
        """The shift's input for this part's new items: the users of every warm-up row shown so far."""
        with torch.no_grad():
            mean, n = mean_user_embedding(self.net.user_id.weight, rows["user"], rows["item"], len(self.users_mean))
            shown = n > 0
            self.users_mean = torch.where(shown[:, None], mean, self.users_mean)
