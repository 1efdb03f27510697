"""BPR matrix factorisation (``bpr-mf``): Rendle et al., UAI 2009; reference implementation RecBole's ``BPR``.

Also the pretrained warm backbone of the content-mapping cold-start methods (DropoutNet, Heater,
GAR, ALDI, DeepMusic, content k-NN), which fetch it through ``ctx.fitted("bpr-mf", {})`` so all of
them build on the same embeddings.

Method card (paper, defaults, what we changed and why): docs/methods/bpr-mf.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Choice, Float
from benchmark.method import Method, NetState, TrainData
from benchmark.training import train_epochs
from methods.item_offset import ItemOffsetWarmUp

FALLBACKS = ("mean", "none")


class MFNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        nn.init.xavier_normal_(self.user_emb.weight)
        nn.init.xavier_normal_(self.item_emb.weight)


class BPRMF(ItemOffsetWarmUp, NetState, Method):
    name = "bpr-mf"
    patience_exception = ("patience 10 predates the rule; bpr-mf is the backbone of most cold-start rows, so it "
                          "changes only with a rerun that measures it (--set bpr-mf.patience=5)")
    version = "2"  # 2: negatives only from items with a training positive; declared cold-item fallback
    protocols = frozenset({"loo", "cold", "warmup"})
    cacheable = True
    defaults = {"dim": 64, "lr": 1e-3, "reg": 1e-5, "batch_size": 1024, "epochs": 200, "patience": 10,
                "cold_fallback": "mean"}
    budgets = {"quick": {"epochs": 5, "patience": 5}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "reg": Float(1e-7, 1e-3, log=True),
                    "dim": Choice((32, 64, 128))}
    option_ranges = {"cold_fallback": FALLBACKS}

    def _build(self, data: TrainData) -> None:
        if self.options["cold_fallback"] not in FALLBACKS:
            raise ValueError(f"bpr-mf.cold_fallback: expected one of {FALLBACKS}, got {self.options['cold_fallback']!r}")
        self.net = MFNet(data.n_users, data.n_items, self.options["dim"]).to(self.device)
        self.has_train = data.item_train_pos_count > 0

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        self._build(data)
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"])
        train = data.train

        def step(idx: torch.Tensor) -> torch.Tensor:
            u, i = train["user"][idx], train["item"][idx]
            j = data.sample_negatives(len(idx), self.ctx.generator)
            eu, ei, ej = self.net.user_emb(u), self.net.item_emb(i), self.net.item_emb(j)
            diff = (eu * ei).sum(-1) - (eu * ej).sum(-1)
            reg = (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()) / len(idx)
            return -F.logsigmoid(diff).mean() + o["reg"] * reg

        info = train_epochs(self, self.net, opt, data.positive_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], "bpr-mf epochs")
        return {**info, "n_train_positives": int((train["label"] > 0).sum())}

    def user_table(self) -> torch.Tensor:
        return self.net.user_emb.weight

    def item_table(self) -> torch.Tensor:
        """Item embeddings as scored: an item with no training positive gets the mean warm embedding."""
        w = self.net.item_emb.weight
        if self.options["cold_fallback"] == "none":
            return w
        return torch.where(self.has_train[:, None], w, w[self.has_train].mean(0, keepdim=True))

    def _dot(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_table()[users], self.item_table()[items]

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        eu = self.user_table()[batch["user"]]  # (B, d)
        ei = self.item_table()[batch["cand"]]  # (B, C, d)
        return torch.einsum("bd,bcd->bc", eu, ei)

    def score_all(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_table()[batch["user"]] @ self.item_table().T
