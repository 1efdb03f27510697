"""Heater (``heater``): Zhu, Lin, He, Wang, Caverlee, "Recommendation for New Users and New Items via Randomized
Training and Mixture-of-Experts Transformation", SIGIR 2020; reference implementation
``Zziwei/Heater--Cold-Start-Recommendation`` (``model.py``, ``main_CiteULike.py``).

Item content passes through a mixture of experts (tanh-gated, tanh outputs); with probability 0.5 a
training pair's pretrained item embedding is *replaced* by the content one (randomised training),
a "diff" term pulls the content embedding toward the pretrained one, and FC-BN-tanh towers map both
sides to the scoring space. Loss: squared error against binary labels (observed 1, sampled 0).

Method card (paper, defaults, what we changed and why): docs/methods/heater.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.coldstart import TableScorer, attach_backbone, layer_sizes, mlp


class MixtureOfExperts(nn.Module):
    """``n_experts`` tanh MLPs over content, mixed by a tanh gate (not a softmax, as the reference)."""

    def __init__(self, content_dim: int, hidden: list[int], out_dim: int, n_experts: int) -> None:
        super().__init__()
        self.gate = nn.Linear(content_dim, n_experts)
        self.experts = nn.ModuleList(
            nn.Sequential(*[m for a, b in zip([content_dim, *hidden], [*hidden, out_dim])
                            for m in (nn.Linear(a, b), nn.Tanh())]) for _ in range(n_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.tanh(self.gate(x))  # (B, E)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, d)
        return torch.tanh(torch.einsum("be,bed->bd", gate, experts))


def tower_of_repeated_rows(tower: nn.Sequential, x: torch.Tensor, repeats: int) -> torch.Tensor:
    """``tower(x.repeat(repeats, 1))[:len(x)]`` computed on each row once: the same values and gradients, since
    a batch of rows each repeated r times has the same mean and (biased) variance, so BatchNorm normalises alike.
    Only the running variance, updated with the unbiased variance, would see n rows instead of n r: it is
    corrected to what the repeated batch gives. Heater's user tower sees each user row 1 + n_neg times."""
    h = x
    for layer in tower:
        out = layer(h)
        if isinstance(layer, nn.BatchNorm1d) and layer.training and layer.track_running_stats and repeats > 1:
            if layer.momentum is None:
                raise ValueError("tower_of_repeated_rows needs BatchNorm with a momentum")
            n, big = len(h), len(h) * repeats
            with torch.no_grad():  # a new buffer tensor: autograd keeps the one the forward pass saved
                layer.running_var = layer.running_var + (layer.momentum * h.detach().var(0, unbiased=False)
                                                         * (big / (big - 1) - n / (n - 1)))
        h = out
    return h


class HeaterNet(nn.Module):
    def __init__(self, emb_dim: int, content_dim: int, hidden: list[int], n_experts: int, rank: int) -> None:
        super().__init__()
        self.moe = MixtureOfExperts(content_dim, hidden, emb_dim, n_experts)
        self.user_tower = mlp([emb_dim, rank, rank])
        self.item_tower = mlp([emb_dim, rank, rank])


class Heater(TableScorer, Method):
    name = "heater"
    patience_exception = ("patience 10 predates the rule and matched the ColdRec comparison of issue 18; to "
                          "change with a rerun that measures it (--set heater.patience=5)")
    uses = ("bpr-mf",)
    version = "2"  # 2: the user tower runs once per positive row, not 1 + n_neg times (same values; faster)
    requires = frozenset({"item_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    defaults = {"n_experts": 5, "hidden": "", "rank": 200, "dropout": 0.5, "alpha": 1e-4, "reg": 1e-4, "lr": 0.005,
                "momentum": 0.9, "lr_decay": 0.8, "decay_every": 10, "n_neg": 5, "batch_size": 1024, "epochs": 100,
                "patience": 10}
    budgets = {"quick": {"epochs": 3, "patience": 3}}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        info = attach_backbone(self, data)
        hidden = layer_sizes(o["hidden"])
        self.net = HeaterNet(self._items.shape[1], self.content.shape[1], hidden, o["n_experts"], o["rank"])
        self.net = self.net.to(self.device)
        opt = torch.optim.SGD(self.net.parameters(), lr=o["lr"], momentum=o["momentum"])
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=o["decay_every"], gamma=o["lr_decay"])
        train, gen = data.train, self.ctx.generator
        epoch_batches = data.positive_batches(o["batch_size"], self.ctx.generator)
        regularised = [p for n, p in self.net.named_parameters() if not _is_norm(self.net, n)]

        def batches():
            yield from epoch_batches()
            sched.step()  # x0.8 every 10 epochs, as the reference

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            u, pos = train["user"][idx], train["item"][idx]
            neg = data.sample_negatives(len(idx) * o["n_neg"], gen)  # warm items only
            items = torch.cat([pos, neg])
            target = torch.cat([torch.ones(len(idx)), torch.zeros(len(neg))]).to(self.device)
            v_in = self._items[items]
            v_content = self.net.moe(self.content[items])
            replaced = (torch.rand(len(items), generator=gen) < o["dropout"]).to(self.device)
            v_last = torch.where(replaced[:, None], v_content, v_in)
            u_out = tower_of_repeated_rows(self.net.user_tower, self._users[u], 1 + o["n_neg"])
            u_out = torch.cat([u_out, u_out.repeat_interleave(o["n_neg"], dim=0)])  # the rows of `users`
            pred = (u_out * self.net.item_tower(v_last)).sum(1)
            mse = (pred - target).pow(2).mean()
            diff = o["alpha"] * (v_content - v_in).pow(2).sum()  # a sum, as the reference
            reg = o["reg"] * sum(p.pow(2).sum() for p in regularised)
            return mse + diff + reg, {"mse": mse.detach(), "diff": diff.detach()}

        fit = train_epochs(self, self.net, opt, batches, step, o["epochs"], o["patience"], "heater epochs")
        return {**info, **fit}

    def user_vecs(self, users: torch.Tensor) -> torch.Tensor:
        return self.net.user_tower(self._users[users])

    def item_vecs(self) -> torch.Tensor:
        v = torch.where(self.warm[:, None], self._items, self.net.moe(self.content))
        return self.net.item_tower(v)


def _is_norm(net: nn.Module, param_name: str) -> bool:
    """True for BatchNorm parameters, which the reference leaves out of the L2 term."""
    module = net.get_submodule(param_name.rsplit(".", 1)[0])
    return isinstance(module, nn.BatchNorm1d)
