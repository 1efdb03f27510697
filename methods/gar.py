"""GAR (``gar``): Chen, Wang, Huang, Huang, Xu, Lin, He, Li, "Generative Adversarial Framework for Cold-Start
Item Recommendation", SIGIR 2022; reference implementation ``zfnWong/GAR`` (``GAR/GAR.py``, ``main.py``).

A generator maps content to an item embedding; a discriminator -- a recommender with separate user
and item MLP towers over embeddings -- learns to rank real positives above a mix of generated and
negative items, while the generator learns to make the discriminator rank its output like the real
embedding (plus an L1 pull toward it). At inference every embedding, warm or generated, passes
through the discriminator's towers before the dot product (the part simplified copies drop).

Method card (paper, defaults, what we changed and why): docs/methods/gar.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.coldstart import TableScorer, attach_backbone, layer_sizes
from methods.layers import Dropout


def gar_mlp(in_dim: int, hidden: list[int], dropout: float, bn_first: bool) -> nn.Sequential:
    """The reference's ``build_mlp`` with tanh: [BN (no scale)] -> FC, then (BN -> tanh -> dropout -> FC) per layer."""
    layers: list[nn.Module] = []
    if bn_first:
        layers.append(nn.BatchNorm1d(in_dim, affine=True))
    layers.append(nn.Linear(in_dim, hidden[0]))
    for a, b in zip(hidden[:-1], hidden[1:]):
        layers += [nn.BatchNorm1d(a), nn.Tanh(), Dropout(dropout), nn.Linear(a, b)]
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


class GARNet(nn.Module):
    def __init__(self, emb_dim: int, content_dim: int, g_layers: list[int], d_layers: list[int], g_drop: float,
                 d_drop: float) -> None:
        super().__init__()
        self.generator = gar_mlp(content_dim, [*g_layers[:-1], emb_dim], g_drop, bn_first=False)
        self.d_user = gar_mlp(emb_dim, d_layers, d_drop, bn_first=True)
        self.d_item = gar_mlp(emb_dim, d_layers, d_drop, bn_first=True)

    def d_score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.d_user(users) * self.d_item(items)).sum(-1)


def l2_weights(module: nn.Module) -> torch.Tensor:
    return sum(m.weight.pow(2).sum() / 2 for m in module.modules() if isinstance(m, nn.Linear))


class GAR(TableScorer, Method):
    name = "gar"
    patience_exception = ("the reference implementation's patience 10 (docs/methods/gar.md)")
    uses = ("bpr-mf",)
    version = "2"  # 2: dropout masks drawn by methods.layers.Dropout (same law, another random stream; faster)
    requires = frozenset({"item_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    defaults = {"alpha": 0.05, "beta": 0.1, "g_lr": 1e-3, "d_lr": 1e-3, "g_drop": 0.1, "d_drop": 0.5,
                "g_layers": "200,200", "d_layers": "200,200", "l2": 1e-3, "batch_size": 1024, "epochs": 1000,
                "patience": 10, "rescale": True}
    budgets = {"quick": {"epochs": 3, "patience": 3}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        info = attach_backbone(self, data)
        if o["rescale"]:  # unit-scale embeddings (one factor per side, warm statistics): geometry kept, see card
            self._users, self._items = self._users / self._users.std(), self._items / self._items[self.warm].std()
        g_layers, d_layers = layer_sizes(o["g_layers"]), layer_sizes(o["d_layers"])
        self.net = GARNet(self._items.shape[1], self.content.shape[1], g_layers, d_layers, o["g_drop"],
                          o["d_drop"]).to(self.device)
        d_params = list(self.net.d_user.parameters()) + list(self.net.d_item.parameters())
        d_opt = torch.optim.Adam(d_params, lr=o["d_lr"])
        g_opt = torch.optim.Adam(self.net.generator.parameters(), lr=o["g_lr"])
        train, gen = data.train, self.ctx.generator
        d_modules = (self.net.d_user, self.net.d_item)

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            u, pos = train["user"][idx], train["item"][idx]
            neg = data.sample_negatives(len(idx), gen)  # warm items only
            ue, real, negative, content = self._users[u], self._items[pos], self._items[neg], self.content[pos]
            # discriminator step: generator frozen (eval mode), towers in training mode
            self.net.generator.eval()
            with torch.no_grad():
                fake = self.net.generator(content)
            for m in d_modules:
                m.train()
            scores = self.net.d_score(ue.repeat(3, 1), torch.cat([real, negative, fake])).view(3, -1)
            d_loss = F.binary_cross_entropy_with_logits(
                scores[0] - (1 - o["beta"]) * scores[2] - o["beta"] * scores[1], torch.ones_like(scores[0]))
            d_loss = d_loss + o["l2"] * sum(l2_weights(m) for m in d_modules)
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            # generator step (returned to the shared loop): discriminator in inference mode
            for m in d_modules:
                m.eval()
            self.net.generator.train()
            fake = self.net.generator(content)
            adv = F.binary_cross_entropy_with_logits(self.net.d_score(ue, fake) - self.net.d_score(ue, real),
                                                     torch.ones(len(idx), device=self.device))
            sim = (fake - real).abs().mean()
            g_loss = (1 - o["alpha"]) * adv + o["alpha"] * sim + o["l2"] * l2_weights(self.net.generator)
            return g_loss, {"d_loss": d_loss.detach(), "g_adv": adv.detach(), "g_sim": sim.detach()}

        fit = train_epochs(self, self.net, g_opt, data.positive_batches(o["batch_size"], self.ctx.generator), step, o["epochs"],
                           o["patience"], "gar epochs")
        return {**info, **fit}

    def user_vecs(self, users: torch.Tensor) -> torch.Tensor:
        return self.net.d_user(self._users[users])

    def item_vecs(self) -> torch.Tensor:
        raw = torch.where(self.warm[:, None], self._items, self.net.generator(self.content))
        return self.net.d_item(raw)
