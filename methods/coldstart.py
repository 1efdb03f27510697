"""Shared pieces of the content-to-collaborative cold-start methods (DropoutNet, Heater, GAR, ALDI, DeepMusic,
content k-NN, CLCRec): the warm backbone, content inputs scaled on warm items only, and dot-product scoring.

Which items take the content path: those with no training positive (``data.item_train_pos_count == 0``).
On the ``cold`` protocol these are exactly the strict new items (plus items never liked by anyone, which
are in no candidate set); the method never learns which cold items are validation or test items. On
``loo`` the same rule applies, so only candidates without any training positive use content there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.method import Method, TrainData
from methods.item_offset import ItemOffsetWarmUp

BACKBONE = "bpr-mf"


def warm_mask(data: TrainData) -> torch.Tensor:
    """(n_items,) True for items with a training positive: the only items with a trained embedding."""
    return data.item_train_pos_count > 0


def standardise(x: torch.Tensor, rows: torch.Tensor, clip: float | None = None, unbiased: bool = True) -> torch.Tensor:
    """Column-wise z-scores with mean and std from ``rows`` only (warm items: no held-out item's statistic).

    ``clip`` and ``unbiased=False`` give DropoutNet's ``prep_standardize``: population std (scikit-learn's
    StandardScaler), values capped at +-clip and |z| < 1e-5 set to 0; rows outside ``rows`` are left as they are
    (DropoutNet scales only the non-zero rows and keeps the zero rows zero)."""
    ref = x[rows]
    mean = ref.mean(0, keepdim=True)
    std = ref.std(0, keepdim=True, unbiased=unbiased)
    z = (x - mean) / torch.where(std > 0, std, torch.ones_like(std))
    if clip is None:
        return z
    z = torch.where(rows[:, None], z, x).clamp(-clip, clip)
    return torch.where(z.abs() < 1e-5, torch.zeros_like(z), z)


class UserNegatives:
    """Negatives drawn per row without replacement from the warm items its user has no training positive of (CLCRec's
    reference: ``random.sample(all_set - user_items, num_neg)``, warm items only here since the others are held
    out). A per-row sort of random keys over the pool, with the user's own items pushed last."""

    def __init__(self, data: TrainData) -> None:
        self.pool = data.negative_items
        slot = torch.full((data.n_items,), -1, dtype=torch.long, device=self.pool.device)
        slot[self.pool] = torch.arange(len(self.pool), device=self.pool.device)
        tr = data.train
        pos = tr["label"] > 0
        users, cols = tr["user"][pos].long(), slot[tr["item"][pos].long()]
        keep = cols >= 0
        order = torch.argsort(users[keep] * len(self.pool) + cols[keep])
        self.users, self.cols = users[keep][order], cols[keep][order]
        self.ptr = torch.searchsorted(self.users, torch.arange(data.n_users + 1, device=self.users.device))

    def sample(self, users: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """(B, n) items; a user with fewer than n items left gets some of its own (never happens on our data)."""
        keys = torch.rand(len(users), len(self.pool), generator=generator).to(self.pool.device)
        starts, stops = self.ptr[users.long()], self.ptr[users.long() + 1]
        counts = stops - starts
        rows = torch.repeat_interleave(torch.arange(len(users), device=keys.device), counts)
        offsets = torch.arange(int(counts.sum()), device=keys.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        keys[rows, self.cols[torch.repeat_interleave(starts, counts) + offsets]] = 2.0
        return self.pool[torch.topk(keys, n, dim=1, largest=False).indices]


def backbone(method: Method, data: TrainData) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The shared BPR-MF backbone's raw user and item embeddings (detached; cold rows are never used)."""
    bb = method.ctx.fitted(BACKBONE, {})
    return (bb.net.user_emb.weight.detach().clone(), bb.net.item_emb.weight.detach().clone(),
            {"backbone": BACKBONE, "backbone_version": bb.version, "backbone_fit": bb.fitted_info})


def attach_backbone(method: Method, data: TrainData) -> dict[str, Any]:
    """Set ``method._users``, ``._items`` (backbone embeddings), ``.warm`` and ``.content`` (raw item content);
    return the backbone's provenance for the fit record."""
    method._users, method._items, info = backbone(method, data)
    method.warm = warm_mask(data)
    method.content = data.item_features
    return info


def layer_sizes(text: str) -> list[int]:
    """``"200,200"`` -> [200, 200]: layer options are strings so that ``--set gar.d_layers=100,100`` works."""
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"layer sizes must be comma-separated integers, got {text!r}") from None


def mlp(sizes: list[int], act: type[nn.Module] = nn.Tanh, batch_norm: bool = True, dropout: float = 0.0,
        last_linear: bool = True) -> nn.Sequential:
    """FC (-> BN) -> activation (-> dropout) blocks; the last layer is linear when ``last_linear``."""
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if last_linear and k == len(sizes) - 2:
            break
        if batch_norm:
            layers.append(nn.BatchNorm1d(sizes[k + 1]))
        layers.append(act())
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class TableScorer(ItemOffsetWarmUp):
    """Dot-product scoring from ``user_vecs(users)`` and ``item_vecs()`` (every item), in eval mode; on
    ``warmup`` new items warm up through a learnt item offset (methods/item_offset.py)."""

    net: nn.Module

    def _dot(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.net.eval()
        return self.user_vecs(users), self.item_vecs()[items]

    def user_vecs(self, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def item_vecs(self) -> torch.Tensor:
        raise NotImplementedError

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        return torch.einsum("bd,bcd->bc", self.user_vecs(batch["user"]), self.item_vecs()[batch["cand"]])

    def score_all(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        return self.user_vecs(batch["user"]) @ self.item_vecs().T
