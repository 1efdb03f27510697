"""CLCRec (``clcrec``): Wei, Wang, Li, Nie, Li, Li, Chua, "Contrastive Learning for Cold-start Recommendation",
ACM MM 2021; reference implementation ``weiyinwei/CLCRec`` (``model_CLCRec.py``, ``main.py``).

Trained from scratch (no backbone): user and item ID embeddings plus a content encoder, with two
contrastive terms -- item ID embedding against the content embeddings of the item and of sampled
warm negatives, and user against items whose ID embeddings are randomly swapped for their content
embeddings. Cold items are scored with the encoder's output.

Method card (paper, defaults, what we changed and why): docs/methods/clcrec.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.coldstart import TableScorer, UserNegatives, warm_mask


class CLCRecNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, content_dim: int, dim: int) -> None:
        super().__init__()
        self.user_emb = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, dim)))
        self.item_emb = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_items, dim)))
        self.encoder = nn.Sequential(nn.Linear(content_dim, 256), nn.LeakyReLU(), nn.Linear(256, dim))


def contrastive(anchor: torch.Tensor, others: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with the positive in column 0: anchor (B, d), others (B, 1 + n_neg, d)."""
    logits = torch.einsum("bd,bkd->bk", anchor, others) / temperature
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def clcrec_terms(net: CLCRecNet, content: torch.Tensor, users: torch.Tensor, items: torch.Tensor,
                 generator: torch.Generator, temperature: float, num_sample: float,
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CLCRec's item-content and user-item contrastive terms and the norm penalty, for ``items`` (B, 1 + n_neg)
    with the positive first.

    Row-wise work (the encoder, L2 normalisation, norms) is done on the catalogue and then gathered for the
    B x (1 + n_neg) slots: the values of doing it per slot (version 2), with 33k fewer rows to normalise per step
    (version 3). Gathers go through F.embedding, whose backward is much faster than indexing's on CPU."""
    feat_all = net.encoder(content)  # as the reference: the catalogue encoded once per step
    n_items = len(feat_all)
    # term 1: the positive's ID embedding against the content embeddings of positive and negatives
    l1 = contrastive(F.normalize(F.embedding(items[:, 0], net.item_emb), dim=-1),
                     F.embedding(items, F.normalize(feat_all, dim=-1)), temperature)
    # term 2: user against items, a random share of whose ID embeddings is replaced by content ones
    flat = items.reshape(-1)
    swap = torch.randint(0, len(flat), (int(len(flat) * num_sample),), generator=generator)
    swapped = torch.zeros(len(flat), dtype=torch.bool, device=items.device)
    swapped[swap.to(items.device)] = True
    table = torch.cat([net.item_emb, feat_all])  # rows n_items.. are the content embeddings
    mixed = F.embedding(flat + swapped.long() * n_items, table)
    ue = F.embedding(users, net.user_emb)
    l2 = contrastive(ue, mixed.view(*items.shape, -1), temperature)
    id_norms = F.embedding(flat, net.item_emb.norm(dim=1, keepdim=True))[:, 0]
    return l1, l2, (ue.norm(dim=1).mean() + id_norms.mean()) / 2


class CLCRec(TableScorer, Method):
    name = "clcrec"
    # 2: negatives without replacement from items the user has no training positive of; 3: row-wise work on the
    # catalogue, then gathered (the same values; float rounding of the gradients' sums may differ)
    version = "3"
    requires = frozenset({"item_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    defaults = {"dim": 64, "lr": 1e-3, "reg": 0.1, "n_neg": 128, "lambda": 0.5, "temperature": 2.0,
                "num_sample": 0.5, "batch_size": 256, "epochs": 1000, "patience": 5}
    budgets = {"quick": {"epochs": 3, "patience": 3}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        self.warm = warm_mask(data)
        self.content = F.normalize(data.item_features, dim=1)  # as the reference: L2-normalised features
        self.net = CLCRecNet(data.n_users, data.n_items, self.content.shape[1], o["dim"]).to(self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"])
        train, gen, lam = data.train, self.ctx.generator, o["lambda"]
        negatives = UserNegatives(data)

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            u, pos = train["user"][idx], train["item"][idx]
            neg = negatives.sample(u, o["n_neg"], gen)  # warm items the user has not liked, no repeats
            items = torch.cat([pos[:, None], neg], dim=1)  # (B, 1 + n_neg)
            l1, l2, reg = clcrec_terms(self.net, self.content, u, items, gen, o["temperature"], o["num_sample"])
            loss = lam * l1 + (1 - lam) * l2 + o["reg"] * reg
            return loss, {"item_content": l1.detach(), "user_item": l2.detach()}

        fit = train_epochs(self, self.net, opt, data.positive_batches(o["batch_size"], self.ctx.generator), step, o["epochs"],
                           o["patience"], "clcrec epochs")
        return fit

    def user_vecs(self, users: torch.Tensor) -> torch.Tensor:
        return self.net.user_emb[users]

    def item_vecs(self) -> torch.Tensor:
        return torch.where(self.warm[:, None], self.net.item_emb, self.net.encoder(self.content))
