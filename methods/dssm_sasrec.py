"""PROMO's backbone (``dssm-sasrec``, the paper's "Pre-train" row) and its fine-tuned form (``finetune``).

Method cards: docs/methods/dssm-sasrec.md and docs/methods/finetune.md.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from benchmark.space import Choice, Float
from benchmark.method import Method, NetState, TrainData
from benchmark.training import train_epochs
from methods.dssm import DSSMNet
from methods.sasrec import SASRec


FEATURE_BLOCK = 1 << 26  # gathered user-feature values per block of `user_vectors` (256 MiB of float32)


class DSSMSASRec(NetState, Method):
    """Two towers; the user tower also takes the mean-pooled output of a frozen, pretrained ``sasrec``."""

    name = "dssm-sasrec"
    uses = ("sasrec",)
    version = "2"  # 2: user vectors in blocks (memory; ML-100K is one block, so its numbers are bitwise the same)
    requires = frozenset({"history", "item_features", "user_features"})
    cacheable = True
    defaults = {"dim": 16, "lr": 1e-3, "batch_size": 128, "l2_emb": 0.01, "epochs": 20, "patience": 5,
                "audit_leak": False}
    budgets = {"quick": {"epochs": 2, "patience": 2}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "l2_emb": Float(1e-4, 1e-1, log=True),
                    "dim": Choice((16, 32, 64))}

    def _build(self, data: TrainData) -> None:
        self.sasrec: SASRec = self.ctx.fitted("sasrec", {"audit_leak": self.options["audit_leak"]})  # type: ignore
        self.uf, self.if_ = data.user_features, data.item_features
        d = self.options["dim"]
        self.net = DSSMNet(data.n_users, data.n_items, self.uf.shape[1], self.if_.shape[1], d,
                           extra_user_dim=self.sasrec.options["dim"]).to(self.device)

    def history_vectors(self, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """s_u from the frozen SASRec (eval mode, so deterministic and precomputable)."""
        return self.sasrec.history_vectors(hist, mask)

    def user_vectors(self, users: torch.Tensor, s_u: torch.Tensor) -> torch.Tensor:
        """In blocks of about 256 MiB of gathered user features: PROMO encodes every training row at once, and
        KuaiRand's ~1,300 feature columns made that 7 GiB at 1.4M rows. ML-100K's rows fit one block."""
        step = max(1, FEATURE_BLOCK // max(1, self.uf.shape[1]))
        if len(users) <= step:
            return self.net.user_vec(users, self.uf[users], s_u)
        return torch.cat([self.net.user_vec(users[k:k + step], self.uf[users[k:k + step]], s_u[k:k + step])
                          for k in range(0, len(users), step)])

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        return self.net.item_vec(items, self.if_[items])

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        self._build(data)
        train = data.train
        s_train = self.history_vectors(train["hist"], train["hist_mask"])
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"], betas=(0.9, 0.98))

        def step(idx: torch.Tensor) -> torch.Tensor:
            u, i = train["user"][idx], train["item"][idx]
            logits = (self.user_vectors(u, s_train[idx]) * self.item_vectors(i)).sum(-1)
            loss = F.binary_cross_entropy_with_logits(logits, train["label"][idx].float())
            return loss + o["l2_emb"] * self.net.l2_emb()

        info = train_epochs(self, self.net, opt, lambda: train.index_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], "dssm-sasrec epochs")
        return {**info, "sasrec": self.sasrec.fitted_info}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        s_u = self.history_vectors(batch["hist"], batch["hist_mask"])
        return torch.einsum("bd,bcd->bc", self.user_vectors(batch["user"], s_u), self.item_vectors(batch["cand"]))



class FineTune(DSSMSASRec):
    """``dssm-sasrec`` with every parameter, SASRec included, trained further on the same rows."""

    name = "finetune"
    uses = ("dssm-sasrec",)
    version = "2"  # 2: patience 5 (the one rule), was 3
    cacheable = False
    defaults = {"lr": 1e-4, "batch_size": 128, "l2_emb": 0.01, "epochs": 20, "patience": 5, "audit_leak": False}
    budgets = {"quick": {"epochs": 1, "patience": 1}}
    search_space = {"lr": Float(1e-5, 1e-3, log=True), "l2_emb": Float(1e-4, 1e-1, log=True)}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        base: DSSMSASRec = self.ctx.fitted("dssm-sasrec", {"audit_leak": o["audit_leak"]})  # type: ignore
        # private copies: the cached backbone serves other trials and must stay untouched
        self.sasrec = copy.copy(base.sasrec)
        self.sasrec.net = copy.deepcopy(base.sasrec.net)
        self.net = copy.deepcopy(base.net)
        self.uf, self.if_ = data.user_features, data.item_features
        model = torch.nn.ModuleList([self.net, self.sasrec.net])
        opt = torch.optim.Adam(model.parameters(), lr=o["lr"], betas=(0.9, 0.98))
        train = data.train

        def step(idx: torch.Tensor) -> torch.Tensor:
            u, i = train["user"][idx], train["item"][idx]
            s_u = self.sasrec.net.pooled(train["hist"][idx], train["hist_mask"][idx])
            logits = (self.user_vectors(u, s_u) * self.item_vectors(i)).sum(-1)
            loss = F.binary_cross_entropy_with_logits(logits, train["label"][idx].float())
            return loss + o["l2_emb"] * (self.net.l2_emb() + torch.norm(self.sasrec.net.item_emb.weight))

        # epoch 0 = the pretrained backbone, so fine-tuning is kept only if validation says it helps
        info = train_epochs(self, model, opt, lambda: train.index_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], "finetune epochs", validate_first=True)
        return {**info, "best_epoch_is_pretrained": info["best_epoch"] == 0, "backbone": base.fitted_info}
