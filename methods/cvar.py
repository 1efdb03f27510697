"""CVAR (``cvar``): Zhao, Ren, Du, Zhang, Wang, "Improving Item Cold-start Recommendation via Model-agnostic
Conditional Variational Autoencoder", SIGIR 2022 (short). Reference code: ``BestActionNow/CVAR``
(``model/warm.py::CVAR``, ``main.py``), whose layer sizes, losses and warm-up schedule this follows.

Two encoders map an item's trained id embedding (posterior) and its content (prior, through CVAR's own
field embeddings) to 16-d Gaussians; a decoder turns a latent plus the item's interaction count into an
id embedding. Loss: the backbone's log-loss with the prior path's embedding + reconstruction of the id
embedding from the posterior path + 1e-4 x the Wasserstein distance between the two Gaussians (noise
scaled by 1e-4). New items get the prior path's embedding; after each warm-up stage CVAR trains on that
stage's rows and writes the new items' embeddings again.

Leak removed: the reference's ``count`` is each item's frequency in the WHOLE rating table (future
popularity). Here the count is what the method has seen: an old item's training rows, a new item's
warm-up rows so far (0 at the base stage), scaled by log1p and the largest training count.

Method card (paper, defaults, what we changed and why): docs/methods/cvar.md.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import TrainData
from benchmark.training import train_epochs
from methods.ctr import FieldPool
from methods.deepfm_warm import DeepFMWarmBase

LATENT = 16
NOISE = 1e-4
REG_WEIGHT = 1e-4


class CVARNet(nn.Module):
    def __init__(self, data: TrainData, d: int) -> None:
        super().__init__()
        self.fields = FieldPool(data.item_feature_names, data.item_features.shape[1], d)  # CVAR's warmup_* layers
        n_side = self.fields.n_fields * d
        self.mean_encoder = nn.Linear(d, LATENT)
        self.log_v_encoder = nn.Linear(d, LATENT)
        self.mean_encoder_p = nn.Linear(n_side, LATENT)
        self.log_v_encoder_p = nn.Linear(n_side, LATENT)
        self.decoder = nn.Linear(LATENT + 1, d)
        for layer in (self.mean_encoder, self.log_v_encoder, self.mean_encoder_p, self.log_v_encoder_p, self.decoder):
            for p in layer.parameters():  # as the reference's init_cvar
                nn.init.uniform_(p, -0.01, 0.01)


def wasserstein(m1: torch.Tensor, lv1: torch.Tensor, m2: torch.Tensor, lv2: torch.Tensor) -> torch.Tensor:
    """Summed 2-Wasserstein distance between diagonal Gaussians (the reference's form)."""
    return ((m1 - m2).pow(2).sum(1) + (torch.exp(0.5 * lv1) - torch.exp(0.5 * lv2)).pow(2).sum(1)).sum()


class CVAR(DeepFMWarmBase):
    name = "cvar"
    version = "2"  # 2: patience 5 (the one rule), was 3
    defaults = {"lr": 1e-3, "weight_decay": 1e-6, "batch_size": 2048, "iters": 10, "refresh_epochs": 1,
                "epochs": 20, "patience": 5, "multi_hot": "mean"}
    budgets = {"quick": {"epochs": 2, "patience": 2}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        info = self.attach(data)
        d = self.net.item_id.embedding_dim
        self.cvar = CVARNet(data, d).to(self.device)
        counts = torch.bincount(data.train["item"], minlength=data.n_items).float()
        self.log_scale = math.log1p(float(counts.max()))  # a training statistic
        self.seen_count = torch.where(self.new, torch.zeros_like(counts), counts)
        self._written = False
        opt = self._optimiser()
        train = data.train

        def batches():
            for idx in train.index_batches(o["batch_size"], self.ctx.generator):
                for _ in range(o["iters"] - 1):  # the reference repeats each batch ``iters`` times
                    self._step(opt, train["user"][idx], train["item"][idx], train["label"][idx].float())
                yield idx

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            return self._loss(train["user"][idx], train["item"][idx], train["label"][idx].float())

        fit = train_epochs(self, self.cvar, opt, batches, step, o["epochs"], o["patience"], "cvar epochs")
        self._write()
        return {**info, **fit, "count_log_scale": self.log_scale}

    def _freq(self, items: torch.Tensor) -> torch.Tensor:
        return (torch.log1p(self.seen_count[items]) / self.log_scale)[:, None]

    def _prior(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        side = self.cvar.fields(self.net.item_x).index_select(0, items).flatten(1)  # pooled once per item
        mean_p, log_v_p = self.cvar.mean_encoder_p(side), self.cvar.log_v_encoder_p(side)
        z_p = mean_p + NOISE * torch.exp(0.5 * log_v_p) * self._noise(mean_p)
        return self.cvar.decoder(torch.cat([z_p, self._freq(items)], 1)), mean_p, log_v_p

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=self.ctx.generator).to(like.device)

    def _loss(self, u: torch.Tensor, i: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.cvar.train()
        id_emb = self.net.item_id(i).detach()
        pred_p, mean_p, log_v_p = self._prior(i)
        mean, log_v = self.cvar.mean_encoder(id_emb), self.cvar.log_v_encoder(id_emb)
        z = mean + NOISE * torch.exp(0.5 * log_v) * self._noise(mean)
        pred = self.cvar.decoder(torch.cat([z, self._freq(i)], 1))
        main = F.binary_cross_entropy_with_logits(self.net(u, i, pred_p), y)
        recon = (pred - id_emb).pow(2).sum(-1).mean()
        reg = wasserstein(mean, log_v, mean_p, log_v_p)
        return main + recon + REG_WEIGHT * reg, {"main": main.detach(), "recon": recon.detach(), "reg": reg.detach()}

    def _optimiser(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.cvar.parameters(), lr=self.options["lr"], weight_decay=self.options["weight_decay"])

    def _step(self, opt: torch.optim.Optimizer, u: torch.Tensor, i: torch.Tensor, y: torch.Tensor) -> None:
        loss, _ = self._loss(u, i, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def _write(self) -> None:
        """New items' id embeddings := the prior path's (content and the count seen so far)."""
        self.cvar.eval()
        with torch.no_grad():
            all_items = torch.arange(len(self.seen_count), device=self.device)
            self.write_new_items(self._prior(all_items)[0])
        self._written = True

    def item_embedding(self, items: torch.Tensor) -> torch.Tensor:
        if self._written:
            return self.net.item_id(items)
        self.cvar.eval()
        return torch.where(self.new[items][:, None], self._prior(items)[0], self.net.item_id(items))

    def observe(self, rows: dict[str, torch.Tensor]) -> None:
        """After a warm-up stage (as the reference's ``warm_up`` per phase): count the rows shown so far, train
        CVAR on this stage's rows (``refresh_epochs`` x ``iters`` steps per batch) against the warmed
        embeddings, and write the new items' embeddings again."""
        o = self.options
        with torch.no_grad():
            shown = torch.bincount(rows["item"], minlength=len(self.seen_count)).float()
            self.seen_count = torch.where(self.new, shown, self.seen_count)
        last = rows["stage"] == rows["stage"].max()
        u, i, y = rows["user"][last], rows["item"][last], rows["label"][last].float()
        opt = self._optimiser()  # a fresh optimiser per stage, as the reference's warm_up
        for _ in range(o["refresh_epochs"]):
            order = torch.randperm(len(u), generator=self.ctx.generator).to(u.device)
            for start in range(0, len(u), o["batch_size"]):
                idx = order[start:start + o["batch_size"]]
                for _ in range(o["iters"]):
                    self._step(opt, u[idx], i[idx], y[idx])
        self._write()
