"""DropoutNet (``dropoutnet``): Volkovs, Yu, Poutanen, "DropoutNet: Addressing Cold Start in Recommender
Systems", NeurIPS 2017; reference implementation ``layer6ai-labs/DropoutNet`` (``tf1/main_citeu.py``,
``tf1/model.py``).

Two towers over [standardised backbone preference vector | content]; whole preference inputs are
replaced by the zero row ("input dropout") at rate 0.5, and the towers regress the backbone's own
scores. A cold item is scored with the zero preference row it was trained with for missing preferences.

Method card (paper, defaults, what we changed and why): docs/methods/dropoutnet.md.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch import nn

from benchmark.space import Float
from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.coldstart import TableScorer, attach_backbone, layer_sizes, mlp, standardise


class DropoutNetModel(nn.Module):
    def __init__(self, pref_dim: int, content_dim: int, layers: list[int], rank: int) -> None:
        super().__init__()
        self.user_tower = mlp([pref_dim, *layers, rank])
        self.item_tower = mlp([pref_dim + content_dim, *layers, rank])


class DropoutNet(TableScorer, Method):
    name = "dropoutnet"
    patience_exception = ("the reference's fixed schedule: 10 epochs with a step-decayed learning rate, every "
                          "epoch run, the best kept")
    uses = ("bpr-mf",)
    version = "3"  # 2: the reference's prep_standardize (non-zero rows, population std, +-5 cap); raw content.
    # 3: targets divided by the std of the backbone's training scores (BPR leaves their scale free; seed 4 diverged)
    requires = frozenset({"item_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    defaults = {"layers": "200", "rank": 200, "dropout": 0.5, "lr": 0.01, "momentum": 0.9, "n_scores_user": 2500,
                "user_batch": 1000, "data_batch": 1024, "max_data_per_step": 2_500_000, "lr_decay": 0.1,
                "decay_every": 50, "epochs": 10, "patience": 10, "standardise_content": False,
                "target_scale": "unit"}
    budgets = {"quick": {"epochs": 2, "max_data_per_step": 100_000}}
    search_space = {"lr": Float(1e-3, 1e-1, log=True), "dropout": Float(0.2, 0.8)}

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        info = attach_backbone(self, data)
        users, items = self._users, self._items
        self.warm_ids = torch.nonzero(self.warm).squeeze(1)
        self.u_raw, self.v_raw = users, items
        # preference inputs standardised column-wise as the reference's prep_standardize: statistics from the non-zero
        # rows (items: the warm ones, whose backbone rows are trained), population std, capped at +-5; the content
        # goes in raw, as the reference feeds its tf-idf rows
        self.u_pref = standardise(users, users.abs().sum(1) > 0, clip=5.0, unbiased=False)
        self.v_pref = standardise(items, self.warm & (items.abs().sum(1) > 0), clip=5.0, unbiased=False)
        if o["standardise_content"]:  # version 1's choice, kept to measure it: z-scored content, warm statistics
            self.content = standardise(self.content, self.warm)
        layers = layer_sizes(o["layers"])
        self.net = DropoutNetModel(users.shape[1], self.content.shape[1], layers, o["rank"]).to(self.device)
        opt = torch.optim.SGD(self.net.parameters(), lr=o["lr"], momentum=o["momentum"])
        train_users = torch.unique(data.train["user"])
        self.target_std = self._target_std(train_users, o["target_scale"])
        gen = self.ctx.generator
        state = {"steps": 0}
        targets: dict[str, torch.Tensor] = {}

        def batches() -> Iterator[torch.Tensor]:
            order = train_users[torch.randperm(len(train_users), generator=gen).to(self.device)]
            for start in range(0, len(order), o["user_batch"]):
                b = order[start:start + o["user_batch"]]
                u, i, t = self._targets(b, o["n_scores_user"])
                perm = torch.randperm(len(u), generator=gen).to(self.device)[:o["max_data_per_step"]]
                targets.update(user=u[perm], item=i[perm], score=t[perm] / self.target_std)
                for s in range(0, len(perm), o["data_batch"]):
                    yield torch.arange(s, min(s + o["data_batch"], len(perm)), device=self.device)
                state["steps"] += 1
                if state["steps"] % o["decay_every"] == 0:
                    for group in opt.param_groups:
                        group["lr"] *= o["lr_decay"]

        def step(idx: torch.Tensor) -> torch.Tensor:
            u, i = targets["user"][idx], targets["item"][idx]
            n_drop = int(o["dropout"] * len(idx))
            drop_u = torch.zeros(len(idx), dtype=torch.bool, device=self.device)
            drop_i = torch.zeros(len(idx), dtype=torch.bool, device=self.device)
            drop_u[torch.randperm(len(idx), generator=gen)[:n_drop].to(self.device)] = True
            drop_i[torch.randperm(len(idx), generator=gen)[:n_drop].to(self.device)] = True
            pred = (self._user_out(u, drop_u) * self._item_out(i, drop_i)).sum(1)
            return (pred - targets["score"][idx]).pow(2).mean()

        fit = train_epochs(self, self.net, opt, batches, step, o["epochs"], o["patience"], "dropoutnet epochs")
        return {**info, **fit, "user_batches": state["steps"], "target_std": self.target_std}

    @torch.no_grad()
    def _target_std(self, users: torch.Tensor, how: str) -> float:
        """The divisor of the regression targets: 1 (``raw``, the reference, whose WMF scores stay near its 0/1
        preferences) or the population std of the backbone's scores over training users x warm items (``unit``):
        BPR-MF leaves its score scale free (std 1.7-2.2 on ML-100K), outside the range the reference's SGD rate and
        momentum were set for. A positive divisor changes no ranking, and it reads only training-time rows."""
        if how == "raw":
            return 1.0
        if how != "unit":
            raise ValueError(f"dropoutnet.target_scale={how!r}: expected 'unit' or 'raw'")
        var, n = 0.0, 0
        mean = 0.0
        for start in range(0, len(users), 1024):  # in blocks: users x warm items can be large (KuaiRand, TMall)
            s = (self.u_raw[users[start:start + 1024]] @ self.v_raw[self.warm_ids].T).double()
            m, k = float(s.mean()), s.numel()
            var += float(((s - m) ** 2).sum()) + n * k / (n + k) * (m - mean) ** 2
            mean, n = mean + (m - mean) * k / (n + k), n + k
        return max(math.sqrt(var / max(n, 1)), 1e-12)

    @torch.no_grad()
    def _targets(self, users: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per user: the backbone's top-n warm items plus n uniformly drawn warm items, with backbone scores."""
        scores = self.u_raw[users] @ self.v_raw[self.warm_ids].T  # (B, n_warm)
        top_n = min(n, len(self.warm_ids))
        top_scores, top_idx = torch.topk(scores, top_n, dim=1)
        rand_idx = torch.randint(0, len(self.warm_ids), (len(users), n), generator=self.ctx.generator).to(self.device)
        rand_scores = scores.gather(1, rand_idx)
        u = torch.cat([users.repeat_interleave(top_n), users.repeat_interleave(n)])
        i = torch.cat([self.warm_ids[top_idx].reshape(-1), self.warm_ids[rand_idx].reshape(-1)])
        return u, i, torch.cat([top_scores.reshape(-1), rand_scores.reshape(-1)])

    def item_pref_input(self, items: torch.Tensor, dropped: torch.Tensor | None = None) -> torch.Tensor:
        """The item tower's preference input: the standardised backbone row, or the zero row when the item is
        dropped (training) or has no preference data (cold items at inference) -- the same constant."""
        missing = ~self.warm[items] if dropped is None else (dropped | ~self.warm[items])
        return torch.where(missing[:, None], torch.zeros_like(self.v_pref[items]), self.v_pref[items])

    def _user_out(self, users: torch.Tensor, dropped: torch.Tensor | None = None) -> torch.Tensor:
        pref = self.u_pref[users]
        if dropped is not None:
            pref = torch.where(dropped[:, None], torch.zeros_like(pref), pref)
        return self.net.user_tower(pref)

    def _item_out(self, items: torch.Tensor, dropped: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.item_tower(torch.cat([self.item_pref_input(items, dropped), self.content[items]], dim=1))

    def user_vecs(self, users: torch.Tensor) -> torch.Tensor:
        return self._user_out(users)

    def item_vecs(self) -> torch.Tensor:
        return self._item_out(torch.arange(len(self.warm), device=self.device))
