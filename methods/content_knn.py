"""Content k-NN (``content-knn``): a cold item's embedding is the similarity-weighted mean of the backbone
embeddings of its k most content-similar warm items (ColdRec ``model/KNN.py``, after Sedhain et al.,
"Social collaborative filtering for cold-start recommendations", RecSys 2014).

Method card (paper, defaults, what we changed and why): docs/methods/content-knn.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import Method, TrainData
from methods.coldstart import TableScorer, backbone, warm_mask


class ContentKNN(TableScorer, Method):
    name = "content-knn"
    uses = ("bpr-mf",)
    version = "1"
    requires = frozenset({"item_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    defaults = {"k": 5}

    def fit(self, data: TrainData) -> dict[str, Any]:
        k = int(self.options["k"])
        if k < 1:
            raise ValueError(f"content-knn.k must be at least 1, got {k}")
        users, items, info = backbone(self, data)
        warm = warm_mask(data)
        warm_ids = torch.nonzero(warm).squeeze(1)
        content = F.normalize(data.item_features, dim=1)  # cosine similarity; all-zero rows stay zero
        cold_ids = torch.nonzero(~warm).squeeze(1)
        sim = content[cold_ids] @ content[warm_ids].T  # (n_cold, n_warm)
        top, idx = torch.topk(sim, min(k, len(warm_ids)), dim=1)
        weights = top.clamp(min=0)
        weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, torch.ones_like(weights))
        weights = weights / weights.sum(1, keepdim=True)
        table = items.clone()
        table[cold_ids] = torch.einsum("ck,ckd->cd", weights, items[warm_ids][idx])
        self.net = nn.Module()  # no trainable part; TableScorer only switches modes
        self._users, self._items = users, table
        return {**info, "n_cold_items_mapped": int(len(cold_ids)), "k": k}

    def user_vecs(self, users: torch.Tensor) -> torch.Tensor:
        return self._users[users]

    def item_vecs(self) -> torch.Tensor:
        return self._items
