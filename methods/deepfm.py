"""DeepFM (``deepfm``): Guo, Tang, Ye, Li, He, "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction", IJCAI 2017. Reference implementation as the warm-up literature runs it: ``BestActionNow/CVAR``
``model/deepfm.py`` (embedding 16, MLP (16, 16), dropout 0.2, Adam lr 1e-3, weight decay 1e-6, batch 2048).

The CTR backbone of MetaEmb, MWUF and CVAR, which fetch it through ``ctx.fitted("deepfm", {})`` so that all
of them build on the same fitted model. On ``warmup`` it is also the "base" row: new items start from
their untrained id embeddings and warm up like every other method.

Method card (paper, defaults, what we changed and why): docs/methods/deepfm.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from benchmark.space import Choice, Float
from benchmark.method import Method, NetState, TrainData
from benchmark.training import train_epochs
from methods.coldstart import layer_sizes
from methods.ctr import DeepFMNet, score_pairs


def negatives_per_positive(option: Any, data: TrainData, protocol: str) -> int:
    """``auto``: one sampled item per positive where the training rows are all positives (implicit protocols such
    as ``cold``), none where they carry labels (``loo``, ``warmup``). On ``loo`` every method then trains on the
    same rows: the explicit labels, plus the split's own sampled negatives under ``loo.train_negatives = N``
    (the sampled regime). Before version 2 (of deepfm, dcn, cdn and plate) these methods alone drew one extra
    item per positive there, a signal no sequence method had (issue 19)."""
    if option == "auto":
        return 1 if data.meta.get("implicit") else 0
    try:
        n = int(option)
    except (TypeError, ValueError):
        raise ValueError(f"sampled_negatives: expected 'auto' or a non-negative integer, got {option!r}") from None
    if n < 0:
        raise ValueError(f"sampled_negatives: expected 'auto' or a non-negative integer, got {option!r}")
    return n


def with_negatives(data: TrainData, idx: torch.Tensor, n_neg: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, items, labels): training rows ``idx`` and, per positive row, ``n_neg`` sampled items that inherit the
    row's user, time and history (so a negative is scored as of the same moment as its positive)."""
    train = data.train
    items, labels = train["item"][idx], train["label"][idx].float()
    if not n_neg:
        return idx, items, labels
    pos_rows = idx[labels > 0].repeat(n_neg)
    neg = data.sample_negatives(len(pos_rows), generator)
    return (torch.cat([idx, pos_rows]), torch.cat([items, neg]),
            torch.cat([labels, torch.zeros(len(pos_rows), device=labels.device)]))


def labelled_batch(data: TrainData, idx: torch.Tensor, n_neg: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(users, items, labels) of training rows ``idx`` plus ``n_neg`` sampled negatives per positive row."""
    rows, items, labels = with_negatives(data, idx, n_neg, generator)
    return data.train["user"][rows], items, labels


class DeepFM(NetState, Method):
    name = "deepfm"
    version = "2"  # 2: sampled_negatives=auto is 0 on loo (the same rows as every method)
    requires = frozenset({"item_features", "user_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    cacheable = True
    calibrated = True
    defaults = {"dim": 16, "layers": "16,16", "dropout": 0.2, "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 2048,
                "epochs": 100, "patience": 5, "sampled_negatives": "auto", "multi_hot": "mean"}
    budgets = {"quick": {"epochs": 5, "patience": 3}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "weight_decay": Float(1e-7, 1e-4, log=True),
                    "dropout": Float(0.0, 0.5), "dim": Choice((16, 32, 64))}

    def _build(self, data: TrainData) -> None:
        o = self.options
        self.net = DeepFMNet(data, o["dim"], layer_sizes(o["layers"]), o["dropout"], o["multi_hot"]).to(self.device)

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        n_neg = negatives_per_positive(o["sampled_negatives"], data, self.ctx.protocol)
        self._build(data)
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])

        def step(idx: torch.Tensor) -> torch.Tensor:
            u, i, y = labelled_batch(data, idx, n_neg, self.ctx.generator)
            return F.binary_cross_entropy_with_logits(self.net(u, i), y)

        info = train_epochs(self, self.net, opt, lambda: data.train.index_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], f"{self.name} epochs")
        return {**info, "sampled_negatives_per_positive": n_neg}

    def predict(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        return self.net(rows["user"], rows["item"])

    def warm_parameters(self) -> list[torch.Tensor]:
        return self.net.item_side()

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return score_pairs(self.predict, batch)
