"""Meta-Embedding (``metaemb``): Pan, Li, Ao, Tang, He, "Warm Up Cold-start Advertisements: Improving CTR
Predictions via Learning to Learn ID Embeddings", SIGIR 2019. Reference code: ``Feiyang/MetaEmbedding`` (TF1
notebook); the generator as the de-facto PyTorch port ``BestActionNow/CVAR`` ``model/warm.py::MetaE``.

A generator maps a new item's content-field embeddings (from the frozen DeepFM backbone, gradient stopped)
to an initial item-id embedding. It is meta-trained on old items with two disjoint batches of the same
items: the cold loss on batch a with the generated embedding, one gradient step on that embedding, the warm
loss on batch b with the updated one; the objective is alpha * L_a + (1 - alpha) * L_b (alpha 0.1).
After fitting, new items start from the generated embedding and warm up like any item-id embedding.

Method card (paper, defaults, what we changed and why): docs/methods/metaemb.md.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Float
from benchmark.method import TrainData
from benchmark.training import train_epochs
from methods.deepfm_warm import DeepFMWarmBase


def item_rows(data: TrainData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ptr, rows, counts): training row indices grouped by item (CSR), for per-item sampling."""
    items = data.train["item"]
    rows = torch.argsort(items, stable=True)
    counts = torch.bincount(items, minlength=data.n_items)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long, device=items.device), torch.cumsum(counts, 0)])
    return ptr, rows, counts


def sample_two_batches(ptr: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor, items: torch.Tensor, m: int,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """For each item, ``m`` rows for batch a and ``m`` other rows for batch b (disjoint), uniformly."""
    width = int(counts[items].max())
    keys = torch.rand(len(items), width, generator=generator).to(items.device)
    keys[torch.arange(width, device=items.device)[None, :] >= counts[items][:, None]] = 2.0
    pos = torch.argsort(keys, dim=1)[:, :2 * m]
    picked = rows[ptr[items][:, None] + pos]
    return picked[:, :m].reshape(-1), picked[:, m:].reshape(-1)


class MetaEmb(DeepFMWarmBase):
    name = "metaemb"
    version = "1"
    defaults = {"alpha": 0.1, "cold_lr": 1e-3, "lr": 1e-3, "weight_decay": 1e-6, "minibatch": 20,
                "items_per_batch": 25, "hidden": 16, "epochs": 50, "patience": 5, "multi_hot": "mean"}
    budgets = {"quick": {"epochs": 3, "patience": 3}}
    search_space = {"alpha": Float(0.01, 0.5, log=True), "cold_lr": Float(1e-4, 1e-2, log=True)}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        info = self.attach(data)
        d = self.net.item_id.embedding_dim
        n_in = self.net.item_fields.n_fields * d
        self.gen = nn.Sequential(nn.Linear(n_in, o["hidden"]), nn.ReLU(), nn.Linear(o["hidden"], d)).to(self.device)
        for p in self.gen.parameters():  # as the port's init_metaE
            nn.init.uniform_(p, -0.01, 0.01)
        self._written = False
        ptr, rows, counts = item_rows(data)
        m = o["minibatch"]
        eligible = torch.nonzero(counts >= 2 * m).squeeze(1)
        if len(eligible) < 1:
            raise ValueError(f"metaemb: no training item has 2 * minibatch = {2 * m} rows")
        weights = counts[eligible].float()
        per_step = min(o["items_per_batch"], len(eligible))
        n_steps = max(1, int(counts[eligible].sum()) // (2 * m * per_step))
        gen = self.ctx.generator
        train = data.train

        def batches() -> Iterator[torch.Tensor]:
            for _ in range(n_steps):  # items drawn in proportion to their rows, as the notebook's minibatches
                pick = torch.multinomial(weights.cpu(), per_step, replacement=False, generator=gen).to(self.device)
                a, b = sample_two_batches(ptr, rows, counts, eligible[pick], m, gen)
                yield torch.stack([a, b])

        def step(ab: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            a, b = ab[0], ab[1]  # (I * m,): item k's rows are k*m .. k*m+m-1 in both batches
            ua, ia, ya = train["user"][a], train["item"][a], train["label"][a].float()
            ub, ib, yb = train["user"][b], train["item"][b], train["label"][b].float()
            items = ia.view(-1, m)[:, 0]
            phi = self.generate(items)  # (I, d): one generated embedding per item
            loss_a = F.binary_cross_entropy_with_logits(self.net(ua, ia, phi.repeat_interleave(m, 0)), ya)
            # the paper's step: phi' = phi - cold_lr * d(item's mean loss on a)/d(phi); the batch mean is
            # the mean of the I item means, so each item's gradient is I times the batch-mean gradient
            grad = torch.autograd.grad(loss_a, phi, create_graph=True)[0] * len(items)
            phi_b = phi - o["cold_lr"] * grad
            loss_b = F.binary_cross_entropy_with_logits(self.net(ub, ib, phi_b.repeat_interleave(m, 0)), yb)
            loss = o["alpha"] * loss_a + (1 - o["alpha"]) * loss_b
            return loss, {"cold_loss": loss_a.detach(), "warm_loss": loss_b.detach()}

        opt = torch.optim.Adam(self.gen.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
        fit = train_epochs(self, self.gen, opt, batches, step, o["epochs"], o["patience"], "metaemb epochs",
                           validate_first=False)
        self.gen.eval()
        with torch.no_grad():
            all_items = torch.arange(data.n_items, device=self.device)
            self.write_new_items(self.generate(all_items))
        self._written = True
        return {**info, **fit, "meta_steps_per_epoch": n_steps}

    def generate(self, items: torch.Tensor) -> torch.Tensor:
        """Generated id embeddings from the items' content fields (the backbone's, gradient stopped)."""
        return self.gen(self.net.item_content(items).detach())

    def item_embedding(self, items: torch.Tensor) -> torch.Tensor:
        if self._written:
            return self.net.item_id(items)
        return torch.where(self.new[items][:, None], self.generate(items), self.net.item_id(items))
