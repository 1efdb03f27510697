"""SASRec over the user's causal positive history (``sasrec``); stage 1 of PROMO's backbone.

Method card (paper, defaults, what we changed and why): docs/methods/sasrec.md.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Choice, Float
from benchmark.method import Method, NetState, TrainData
from benchmark.training import train_epochs
from methods.layers import Dropout


DEDUP_BLOCK = 1 << 18  # rows deduplicated together: ML-100K's 94,626 training rows are one block
DEDUP_ROWS = 16384  # history_vectors looks for repeated windows above this many rows (training rows, not batches)


class CausalAttention(nn.Module):
    """Multi-head causal attention, queries from the normalised input and keys/values from the raw input
    (as the reference SASRec port); fused scaled-dot-product kernel."""

    def __init__(self, dim: int, heads: int, attn_dropout: float) -> None:
        super().__init__()
        self.heads, self.attn_dropout = heads, attn_dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor) -> torch.Tensor:
        B, L, d = q_in.shape
        h = self.heads
        q = self.q(q_in).view(B, L, h, d // h).transpose(1, 2)
        k, v = self.kv(kv_in).view(B, L, 2, h, d // h).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        return self.out(o.transpose(1, 2).reshape(B, L, d))


class SASRecEncoder(nn.Module):
    """Self-attentive encoder (Kang & McAuley 2018) of a left-padded item sequence (latest item last)."""

    def __init__(self, n_items: int, dim: int, max_len: int, blocks: int, heads: int, dropout: float,
                 attn_dropout: float = 0.0) -> None:
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)  # row 0 is padding, item k is row k+1
        self.pos_emb = nn.Embedding(max_len, dim)
        self.drop = Dropout(dropout)
        self.attn_ln = nn.ModuleList(nn.LayerNorm(dim, eps=1e-8) for _ in range(blocks))
        self.attn = nn.ModuleList(CausalAttention(dim, heads, attn_dropout) for _ in range(blocks))
        self.ffn_ln = nn.ModuleList(nn.LayerNorm(dim, eps=1e-8) for _ in range(blocks))
        self.ffn = nn.ModuleList(nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), Dropout(dropout),
                                               nn.Linear(dim, dim), Dropout(dropout)) for _ in range(blocks))
        self.last_ln = nn.LayerNorm(dim, eps=1e-8)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_emb(items + 1)

    def forward(self, hist: torch.Tensor, mask: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (B, L, d) at every position; padded positions are zero.

        ``prefix`` (B, P, d): soft prompt tokens put in front of the sequence (PPR); they carry no position
        embedding, every item position attends to them, and the output grows to (B, P + L, d)."""
        hist, mask = hist[:, -self.max_len:], mask[:, -self.max_len:]
        L = hist.shape[1]
        m = mask.unsqueeze(-1).to(self.item_emb.weight.dtype)
        x = self.item_emb(torch.where(mask, hist + 1, torch.zeros_like(hist))) * math.sqrt(self.dim)
        x = self.drop(x + self.pos_emb.weight[-L:].unsqueeze(0)) * m
        if prefix is not None:
            x = torch.cat([prefix, x], dim=1)
            m = torch.cat([torch.ones_like(prefix[..., :1]), m], dim=1)
        for ln_a, attn, ln_f, ffn in zip(self.attn_ln, self.attn, self.ffn_ln, self.ffn):
            q = ln_a(x)
            x = q + attn(q, x)
            x = ln_f(x)
            x = (x + ffn(x)) * m
        return self.last_ln(x) * m

    def pooled(self, hist: torch.Tensor, mask: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the outputs over valid positions (zeros for an empty history), as PROMO's s_u; prompt
        tokens in ``prefix`` count as valid positions."""
        out = self.forward(hist, mask, prefix)
        n = mask[:, -self.max_len:].sum(1, keepdim=True) + (0 if prefix is None else prefix.shape[1])
        return out.sum(1) / n.clamp(min=1).to(out.dtype)


class SASRec(NetState, Method):
    name = "sasrec"
    version = "3"  # 2: dropout masks drawn by methods.layers.Dropout (same law, another random stream; faster).
    # 3: history_vectors deduplicates windows in blocks of 2^18 rows (memory; ML-100K is one block, bitwise the same)
    requires = frozenset({"history"})
    cacheable = True
    defaults = {"dim": 16, "max_len": 50, "blocks": 2, "heads": 4, "dropout": 0.1, "lr": 1e-3, "batch_size": 128,
                "l2_emb": 0.01, "epochs": 30, "patience": 5, "attn_dropout": 0.0, "audit_leak": False}
    budgets = {"quick": {"epochs": 1, "patience": 1}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "l2_emb": Float(1e-4, 1e-1, log=True),
                    "dropout": Float(0.0, 0.5), "dim": Choice((16, 32, 64))}

    def _build(self, data: TrainData) -> None:
        o = self.options
        self.net = SASRecEncoder(data.n_items, o["dim"], o["max_len"], o["blocks"], o["heads"], o["dropout"],
                                 o["attn_dropout"])
        for p in self.net.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        self.net.to(self.device)

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        self._build(data)
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"], betas=(0.9, 0.98))
        train = data.train

        def step(idx: torch.Tensor) -> torch.Tensor:
            s_u = self.net.pooled(train["hist"][idx], train["hist_mask"][idx])
            logits = (s_u * self.net.item_vectors(train["item"][idx])).sum(-1)
            loss = F.binary_cross_entropy_with_logits(logits, train["label"][idx].float())
            return loss + o["l2_emb"] * torch.norm(self.net.item_emb.weight)

        return train_epochs(self, self.net, opt, lambda: train.index_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], "sasrec epochs")

    @torch.no_grad()
    def history_vectors(self, hist: torch.Tensor, mask: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """s_u of many windows as the frozen model sees them (eval mode, no gradient, in chunks): the input
        of ``dssm-sasrec`` and ``cb2cf``'s collaborative target. Each distinct window is encoded once (ML-100K's
        94,626 training rows hold 29,809 distinct windows: a user's rows between two positives share one;
        ``python perf/bench_kernels.py`` times both ways)."""
        self.net.eval()
        hist, mask = hist[:, -self.net.max_len:], mask[:, -self.net.max_len:]
        if len(hist) <= DEDUP_ROWS:  # an evaluation batch: finding the distinct rows costs more than it saves
            return torch.cat([self.net.pooled(hist[k:k + chunk], mask[k:k + chunk]) for k in range(0, len(hist), chunk)]
                             ) if len(hist) else torch.zeros(0, self.net.dim, device=hist.device)
        if len(hist) > DEDUP_BLOCK:  # distinct windows per block: torch.unique's sort copies of every row's window
            # were 2.3 GiB at 1.4M rows (issue 20); a window repeated across blocks is encoded once per block
            return torch.cat([self.history_vectors(hist[k:k + DEDUP_BLOCK], mask[k:k + DEDUP_BLOCK], chunk)
                              for k in range(0, len(hist), DEDUP_BLOCK)])
        key = torch.where(mask, hist, torch.full_like(hist, -1))  # padding positions are ignored by the encoder
        distinct, inverse = torch.unique(key, dim=0, return_inverse=True)
        d_mask = distinct >= 0
        d_hist = distinct.clamp(min=0)
        out = torch.cat([self.net.pooled(d_hist[k:k + chunk], d_mask[k:k + chunk])
                         for k in range(0, len(distinct), chunk)]) if len(distinct) else \
            torch.zeros(0, self.net.dim, device=hist.device)
        return out[inverse]

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        s_u = self.net.pooled(batch["hist"], batch["hist_mask"])
        return torch.einsum("bd,bcd->bc", s_u, self.net.item_vectors(batch["cand"]))
