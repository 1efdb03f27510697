"""Cross Decoupling Network (``cdn``): Y. Zhang, R. Wang, T. Yao, X. Yi, L. Hong, J. Caverlee, E. H. Chi, D. Z. Cheng,
"Empowering Long-tail Item Recommendation through Cross Decoupling Network (CDN)", KDD 2023 (arXiv 2210.14309).
No official code is public; the PROMO authors' port is ``ClumsyInvoker/Rec2024`` ``models/CDN.py`` ([D]).

Item side: a memorisation expert (item id) and a generalisation expert (item content), mixed by a gate that reads
the item's popularity. User side: a shared bottom with two heads, the main branch trained on the natural row
distribution and the regulariser branch on rows re-sampled inversely to item popularity; the gamma-adapter moves
the loss weight from the first to the second over training. Scores are dot products of the two towers.

The gate reads the item's training positives strictly before the row's or event's time (methods/popularity.py),
never [D]'s global cold flag, which counts the test period.

Method card (paper, defaults, what we changed and why): docs/methods/cdn.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Float
from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.coldstart import layer_sizes, mlp
from methods.ctr import FieldEmbeddings
from methods.deepfm import negatives_per_positive, with_negatives
from methods.popularity import CausalPopularity, log_count


class CDNNet(nn.Module):
    """The two towers. The user tower also reads the mean id embedding of the user's causal positive history."""

    def __init__(self, data: TrainData, dim: int, layers: list[int], dropout: float, multi_hot: str = "mean") -> None:
        super().__init__()
        self.emb = FieldEmbeddings(data, dim, first_order=False, multi_hot=multi_hot)
        n_user = (2 + self.emb.user_fields.n_fields) * dim  # id, history, content fields
        self.user_bottom = mlp([n_user, *layers], act=nn.ReLU, batch_norm=True, dropout=dropout, last_linear=False)
        width = layers[-1] if layers else n_user
        self.main_head = nn.Linear(width, dim)
        self.reg_head = nn.Linear(width, dim)
        self.memorise = mlp([dim, *layers, dim], act=nn.ReLU, batch_norm=False)
        self.generalise = mlp([self.emb.item_fields.n_fields * dim, *layers, dim], act=nn.ReLU, batch_norm=False)
        self.gate = nn.Linear(1, 2)  # popularity -> weights of (memorisation, generalisation)
        for table in (self.emb.user_id, self.emb.item_id):
            nn.init.xavier_uniform_(table.weight)

    def user_bottom_of(self, users: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.emb
        m = mask.unsqueeze(-1).float()
        history = (e.item_id(hist) * m).sum(1) / m.sum(1).clamp(min=1.0)
        fields = e.user_fields(e.user_x).index_select(0, users).flatten(1)
        return self.user_bottom(torch.cat([e.user_id(users), history, fields], dim=1))

    def items(self, items: torch.Tensor, log_pop: torch.Tensor) -> torch.Tensor:
        """(..., d) item vectors of ``items`` (any shape) given log(1 + popularity) of the same shape."""
        flat = items.reshape(-1)
        e = self.emb
        content = e.item_fields(e.item_x).index_select(0, flat).flatten(1)
        experts = torch.stack([self.memorise(e.item_id(flat)), self.generalise(content)], dim=1)  # (N, 2, d)
        weights = torch.softmax(self.gate(log_pop.reshape(-1, 1)), dim=-1)  # (N, 2)
        return (weights.unsqueeze(-1) * experts).sum(1).view(*items.shape, -1)


class CDN(Method):
    name = "cdn"
    version = "2"  # 2: sampled_negatives=auto is 0 on loo (methods/deepfm.py negatives_per_positive)
    requires = frozenset({"history", "item_features", "user_features"})
    protocols = frozenset({"loo"})  # the gate needs event times (loo's causal windows)
    defaults = {"dim": 16, "layers": "64", "dropout": 0.2, "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 1024,
                "epochs": 30, "patience": 5, "gamma": 1.0, "sampled_negatives": "auto", "multi_hot": "mean"}
    budgets = {"quick": {"epochs": 4, "patience": 2}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "weight_decay": Float(1e-7, 1e-4, log=True),
                    "dropout": Float(0.0, 0.5), "gamma": Float(0.25, 4.0, log=True)}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        if o["gamma"] <= 0:
            raise ValueError(f"cdn: gamma must be positive, got {o['gamma']!r}")
        n_neg = negatives_per_positive(o["sampled_negatives"], data, self.ctx.protocol)
        self.pop = CausalPopularity(data)
        self.net = CDNNet(data, o["dim"], layer_sizes(o["layers"]), o["dropout"], o["multi_hot"]).to(self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
        train = data.train
        # the regulariser branch's rows: drawn with probability inverse to the item's training positives
        weight = (1.0 / (1.0 + data.item_train_pos_count.float()[train["item"]])).cpu()
        state: dict[str, Any] = {"epoch": 0, "alpha": 1.0, "balanced": None, "at": 0, "alphas": []}

        def batches():
            # the adapter's schedule: the main branch's weight falls from 1 as 1 - (t / (gamma T))^2
            state["alpha"] = max(0.0, 1.0 - (state["epoch"] / (o["gamma"] * o["epochs"])) ** 2)
            state["epoch"] += 1
            state["alphas"].append(round(state["alpha"], 6))
            state["balanced"] = torch.multinomial(weight, train.n_rows, replacement=True,
                                                  generator=self.ctx.generator).to(self.device)
            state["at"] = 0
            return train.index_batches(o["batch_size"], self.ctx.generator)

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            balanced = state["balanced"][state["at"]:state["at"] + len(idx)]
            state["at"] += len(idx)
            main = self._loss(data, idx, n_neg, self.net.main_head)
            reg = self._loss(data, balanced, n_neg, self.net.reg_head)
            alpha = state["alpha"]
            return alpha * main + (1.0 - alpha) * reg, {"main": main.detach(), "regulariser": reg.detach()}

        info = train_epochs(self, self.net, opt, batches, step, o["epochs"], o["patience"], "cdn epochs")
        return {**info, "adapter_alpha": state["alphas"], "sampled_negatives_per_positive": n_neg}

    def _loss(self, data: TrainData, idx: torch.Tensor, n_neg: int, head: nn.Module) -> torch.Tensor:
        train = data.train
        rows, items, labels = with_negatives(data, idx, n_neg, self.ctx.generator)
        users, times = train["user"][rows], train["time"][rows]
        bottom = self.net.user_bottom_of(users, train["hist"][rows], train["hist_mask"][rows])
        v = self.net.items(items, log_count(self.pop.counts(items, times)))
        return F.binary_cross_entropy_with_logits((head(bottom) * v).sum(-1), labels)

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        cand = batch["cand"]
        bottom = self.net.user_bottom_of(batch["user"], batch["hist"], batch["hist_mask"])
        u = 0.5 * (self.net.main_head(bottom) + self.net.reg_head(bottom))  # both branches, equally (BBN's inference)
        v = self.net.items(cand, log_count(self.pop.counts(cand, batch["time"][:, None])))
        return torch.einsum("bd,bcd->bc", u, v)
