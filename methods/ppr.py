"""PPR (``ppr``): Y. Wu, R. Xie, Y. Zhu, F. Zhuang, X. Zhang, L. Lin, Q. He, "Personalized Prompt for Sequential
Recommendation", TKDE 2024 (arXiv 2205.09666). PROMO's authors' port: ``ClumsyInvoker/Rec2024`` ``models/PPR.py``
([D]).

A prompt generator turns the user's profile (user-id embedding and content features) into soft prompt tokens
that are put in front of the item sequence of the pretrained, frozen SASRec (the shared ``sasrec`` backbone). The
sequence output, pooled as SASRec's, is dotted with SASRec's item embeddings. Only the generator trains: the
paper's light, prompt-tuning variant (``tune_backbone=true`` gives its full variant).

Method card (paper, defaults, what we changed and why): docs/methods/ppr.md.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Float, Int
from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.sasrec import SASRec


class PromptGenerator(nn.Module):
    """User profile -> ``length`` prompt tokens of size ``dim``."""

    def __init__(self, n_users: int, n_user_feat: int, dim: int, length: int) -> None:
        super().__init__()
        self.length, self.dim = length, dim
        self.user_emb = nn.Embedding(n_users, dim)
        self.user_feat = nn.Linear(n_user_feat, dim)
        self.net = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, length * dim))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)

    def forward(self, users: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user_emb(users), self.user_feat(feats)], dim=-1)
        return self.net(x).view(-1, self.length, self.dim)


class PPR(Method):
    name = "ppr"
    uses = ("sasrec",)
    version = "1"
    requires = frozenset({"history", "user_features"})
    defaults = {"prompt_len": 1, "lr": 1e-3, "batch_size": 128, "l2_emb": 0.01, "epochs": 20, "patience": 5,
                "tune_backbone": False, "audit_leak": False}
    budgets = {"quick": {"epochs": 2, "patience": 2}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "l2_emb": Float(1e-4, 1e-1, log=True),
                    "prompt_len": Int(1, 4)}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        if o["prompt_len"] < 1:
            raise ValueError(f"ppr: prompt_len must be at least 1, got {o['prompt_len']!r}")
        base: SASRec = self.ctx.fitted("sasrec", {"audit_leak": o["audit_leak"]})  # type: ignore[assignment]
        # a private copy: the cached backbone serves other trials and must stay untouched
        self.encoder = copy.deepcopy(base.net)
        self.encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(bool(o["tune_backbone"]))
        self.uf = data.user_features
        self.prompts = PromptGenerator(data.n_users, self.uf.shape[1], self.encoder.dim, o["prompt_len"]).to(self.device)
        trained = nn.ModuleList([self.prompts] + ([self.encoder] if o["tune_backbone"] else []))
        opt = torch.optim.Adam(trained.parameters(), lr=o["lr"], betas=(0.9, 0.98))
        train = data.train

        def step(idx: torch.Tensor) -> torch.Tensor:
            logits = self._logits(train["user"][idx], train["hist"][idx], train["hist_mask"][idx], train["item"][idx][:, None])
            loss = F.binary_cross_entropy_with_logits(logits[:, 0], train["label"][idx].float())
            return loss + o["l2_emb"] * torch.norm(self.prompts.user_emb.weight)

        # epoch 0 is SASRec with the untrained prompt: tuning is kept only if validation says it helps
        info = train_epochs(self, trained, opt, lambda: train.index_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], "ppr epochs", validate_first=True)
        self.encoder.eval()
        return {**info, "sasrec": base.fitted_info}

    def _logits(self, users: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        s_u = self.encoder.pooled(hist, mask, self.prompts(users, self.uf[users]))
        return torch.einsum("bd,bcd->bc", s_u, self.encoder.item_vectors(cand))

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.prompts.eval()
        self.encoder.eval()
        return self._logits(batch["user"], batch["hist"], batch["hist_mask"], batch["cand"])
