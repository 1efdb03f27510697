"""PLATE (``plate``): Y. Wang, H. Guo, B. Chen, W. Liu, Z. Liu, Q. Zhang, Z. He, H. Zheng, W. Yao, M. Zhang, Z. Dong,
R. Tang, "PLATE: A Prompt-Enhanced Paradigm for Multi-Scenario Recommendations", SIGIR 2023. As PROMO's authors ran
it ([D], ``ClumsyInvoker/Rec2024`` ``models/PLATE.py``): a DeepFM backbone whose MLP also reads two prompts, a
domain prompt (cold or warm item, the "scenario") and a user prompt generated from the user's id embedding by an
AutoDis-style soft lookup over a few meta-embeddings.

Two stages, as the paper: pre-train the backbone on every training row with the prompts held at their
initial values, then freeze it and tune only the prompts (validation decides whether tuning is kept).

Domain: an item is cold for a row when it had fewer than ``tau`` training positives strictly before the row's
time (``tau`` is the split's own threshold on ``loo``), never [D]'s global flag, which counts the test period.

Method card (paper, defaults, what we changed and why): docs/methods/plate.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Float
from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.coldstart import layer_sizes, mlp
from methods.ctr import DeepFMNet, score_pairs
from methods.deepfm import negatives_per_positive, with_negatives
from methods.popularity import CausalPopularity


class UserPrompt(nn.Module):
    """AutoDis-style prompt: an MLP of the user embedding scores ``n_meta`` meta-embeddings; the prompt is their
    softmax(score / temperature)-weighted sum. Starts constant (zero MLP output: the mean meta-embedding)."""

    def __init__(self, dim: int, layers: list[int], n_meta: int, temperature: float, dropout: float) -> None:
        super().__init__()
        self.mlp = mlp([dim, *layers, n_meta], act=nn.ReLU, batch_norm=True, dropout=dropout)
        for p in self.mlp.parameters():
            nn.init.zeros_(p)
        self.meta = nn.Parameter(torch.empty(n_meta, dim).uniform_(-0.01, 0.01))
        self.temperature = temperature

    def forward(self, user_emb: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.mlp(user_emb) / self.temperature, dim=-1) @ self.meta


class PlateNet(DeepFMNet):
    """DeepFM with two prompt fields appended to the MLP's input (not to the FM, as [D])."""

    def __init__(self, data: TrainData, dim: int, layers: list[int], dropout: float, prompt_layers: list[int],
                 n_meta: int, temperature: float, multi_hot: str = "mean") -> None:
        super().__init__(data, dim, layers, dropout, multi_hot)
        self.mlp = mlp([(self.n_fields + 2) * dim, *layers, 1], act=nn.ReLU, batch_norm=True, dropout=dropout)
        self.domain = nn.Embedding(2, dim)  # 0: warm item, 1: cold item
        nn.init.uniform_(self.domain.weight, -0.01, 0.01)
        self.user_prompt = UserPrompt(dim, prompt_layers, n_meta, temperature, dropout)

    def prompt_parameters(self) -> list[nn.Parameter]:
        return [self.domain.weight, *self.user_prompt.parameters()]

    def forward(self, users: torch.Tensor, items: torch.Tensor, cold: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        fields, wide = self.fm_part(users, items)
        prompts = [self.domain(cold.long()), self.user_prompt(fields[:, 0])]  # field 0 is the user-id embedding
        return wide + self.mlp(torch.cat([*prompts, fields.flatten(1)], dim=1))[:, 0]


class Plate(Method):
    name = "plate"
    version = "2"  # 2: sampled_negatives=auto is 0 on loo (methods/deepfm.py negatives_per_positive)
    requires = frozenset({"item_features", "user_features"})
    protocols = frozenset({"loo"})  # the domain needs event times
    defaults = {"dim": 16, "layers": "32,32", "dropout": 0.2, "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 2048,
                "epochs": 100, "patience": 5, "prompt_lr": 1e-3, "prompt_epochs": 30, "prompt_patience": 5,
                "prompt_layers": "32,32", "n_meta": 10, "temperature": 0.01, "tau": "split",
                "sampled_negatives": "auto", "multi_hot": "mean"}
    budgets = {"quick": {"epochs": 4, "patience": 2, "prompt_epochs": 2, "prompt_patience": 1}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "prompt_lr": Float(1e-4, 1e-2, log=True),
                    "temperature": Float(1e-3, 1e-1, log=True)}

    def _tau(self, data: TrainData) -> int:
        tau = self.options["tau"]
        if tau == "split":
            tau = data.meta.get("params", {}).get("tau")
            if tau is None:
                raise ValueError("plate: this split has no cold threshold tau; set plate.tau=N")
        return int(tau)

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        n_neg = negatives_per_positive(o["sampled_negatives"], data, self.ctx.protocol)
        self.pop, self.tau = CausalPopularity(data), self._tau(data)
        self.net = PlateNet(data, o["dim"], layer_sizes(o["layers"]), o["dropout"], layer_sizes(o["prompt_layers"]),
                            o["n_meta"], o["temperature"], o["multi_hot"]).to(self.device)
        train = data.train

        def step(idx: torch.Tensor) -> torch.Tensor:
            rows, items, labels = with_negatives(data, idx, n_neg, self.ctx.generator)
            users = train["user"][rows]
            logits = self.net(users, items, self._cold(items, train["time"][rows]))
            return F.binary_cross_entropy_with_logits(logits, labels)

        def batches():
            return train.index_batches(o["batch_size"], self.ctx.generator)

        prompts = {id(p) for p in self.net.prompt_parameters()}
        backbone = [p for p in self.net.parameters() if id(p) not in prompts]
        pre = train_epochs(self, self.net, torch.optim.Adam(backbone, lr=o["lr"], weight_decay=o["weight_decay"]),
                           batches, step, o["epochs"], o["patience"], "plate pre-train epochs")
        for p in backbone:
            p.requires_grad_(False)
        # only the prompts train (and are restored at their best epoch); the backbone stays in eval mode, so its
        # batch-norm statistics and dropout are those of the pre-trained model
        self.net.eval()
        prompt_net = nn.ModuleList([self.net.domain, self.net.user_prompt])
        tune = train_epochs(self, prompt_net, torch.optim.Adam(self.net.prompt_parameters(), lr=o["prompt_lr"]),
                            batches, step, o["prompt_epochs"], o["prompt_patience"], "plate prompt epochs",
                            validate_first=True)
        return {"pretrain": pre, "prompt": tune, "tau": self.tau, "sampled_negatives_per_positive": n_neg,
                "best_epoch_is_pretrained": tune["best_epoch"] == 0}

    def _cold(self, items: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        return self.pop.counts(items, times) < self.tau

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        cand = batch["cand"]
        cold = self._cold(cand, batch["time"][:, None]).reshape(-1)
        return score_pairs(lambda rows: self.net(rows["user"], rows["item"], cold), batch)
