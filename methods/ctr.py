"""The CTR model shared by DeepFM, MetaEmb, MWUF and CVAR: fields, their embeddings and the DeepFM network.

Fields follow the feature columns' names: ``genre=Drama`` and ``genre=Comedy`` are one field ``genre``,
``age25-34`` belongs to ``age``. A field's embedding pools its active columns' embeddings: their mean
by default (``multi_hot = mean``), or their sum (``multi_hot = sum``) as CVAR's ``seq`` fields
(``model/deepfm.py``); one-hot fields pick one column either way, so only multi-hot fields (ML-100K's
genres) differ. The model's fields are user id, item id, then the user's and the item's content fields.

The item-id embedding can be replaced per row (``item_id_emb``): that is how the generators of
MetaEmb, MWUF and CVAR plug their embeddings into the frozen backbone (CVAR's ``forward_with_item_id_emb``).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from benchmark.method import TrainData
from benchmark.data.encode import field_of
from methods.coldstart import mlp


MULTI_HOT = ("mean", "sum")


def check_multi_hot(value: str) -> str:
    if value not in MULTI_HOT:
        raise ValueError(f"option multi_hot={value!r}: expected one of {', '.join(MULTI_HOT)}")
    return value


class FieldPool(nn.Module):
    """Per-field mean (or sum) of the active feature columns' embeddings: (B, F) values -> (B, n_fields, d)."""

    def __init__(self, names: tuple[str, ...], n_columns: int, dim: int, pool: str = "mean") -> None:
        super().__init__()
        self.pool = check_multi_hot(pool)
        fields = list(dict.fromkeys(field_of(n) for n in names)) if names else (["content"] if n_columns else [])
        member = torch.zeros(len(fields), n_columns)
        for col in range(n_columns):
            member[fields.index(field_of(names[col])) if names else 0, col] = 1.0
        self.register_buffer("member", member)
        # each field's columns: pooling field by field keeps memory at (B, F), not (B, fields, F), which
        # matters for KuaiRand's ~2,000 user columns over 27 k users
        for g in range(len(fields)):
            self.register_buffer(f"cols{g}", torch.nonzero(member[g]).flatten(), persistent=False)
        self.fields = fields
        self.emb = nn.Parameter(torch.empty(n_columns, dim))
        self.linear = nn.Parameter(torch.zeros(n_columns))
        nn.init.xavier_uniform_(self.emb)

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        for g in range(len(self.fields)):
            cols = getattr(self, f"cols{g}")
            xg = x.index_select(1, cols)  # (B, F_g)
            if self.pool == "mean":
                xg = xg / xg.sum(-1, keepdim=True).clamp(min=1.0)
            pooled.append(xg @ self.emb.index_select(0, cols))
        return torch.stack(pooled, dim=1) if pooled else x.new_zeros(x.shape[0], 0, self.emb.shape[1])  # (B, G, d)

    def first_order(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.linear


class FieldEmbeddings(nn.Module):
    """The embedding side every CTR model here shares: user id, item id, and the pooled content fields
    (plus first-order weights for models with a linear part)."""

    def __init__(self, data: TrainData, dim: int, first_order: bool, multi_hot: str = "mean") -> None:
        super().__init__()
        self.register_buffer("user_x", data.user_features.float())
        self.register_buffer("item_x", data.item_features.float())
        self.user_id = nn.Embedding(data.n_users, dim)
        self.item_id = nn.Embedding(data.n_items, dim)
        if first_order:
            self.user_id_linear = nn.Embedding(data.n_users, 1)
            self.item_id_linear = nn.Embedding(data.n_items, 1)
        self.user_fields = FieldPool(data.user_feature_names, data.user_features.shape[1], dim, multi_hot)
        self.item_fields = FieldPool(data.item_feature_names, data.item_features.shape[1], dim, multi_hot)

    @property
    def n_fields(self) -> int:
        return 2 + self.user_fields.n_fields + self.item_fields.n_fields

    def item_content(self, items: torch.Tensor) -> torch.Tensor:
        """(B, n_item_fields * d): the item's content-field embeddings, concatenated (the generators' input)."""
        return self.item_fields(self.item_x).index_select(0, items).flatten(1)

    def field_stack(self, users: torch.Tensor, items: torch.Tensor,
                    item_id_emb: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_fields, d); ``item_id_emb`` (B, d) replaces the item-id embedding.

        Content fields are pooled once for every user and item, then gathered: scoring every item for a batch
        of users (full ranking) would otherwise pool the same item's fields once per user."""
        e_item = self.item_id(items) if item_id_emb is None else item_id_emb
        # index_select, not x[idx]: its backward is deterministic on a multi-threaded CPU, x[idx]'s is not
        return torch.cat([self.user_id(users)[:, None], e_item[:, None],
                          self.user_fields(self.user_x).index_select(0, users),
                          self.item_fields(self.item_x).index_select(0, items)], dim=1)

    def item_side(self) -> list[torch.Tensor]:
        """What warm-up updates, as CVAR's ``only_optimize_itemid``: every item-id parameter."""
        return [self.item_id.weight] + ([self.item_id_linear.weight] if hasattr(self, "item_id_linear") else [])


class DeepFMNet(FieldEmbeddings):
    """DeepFM (Guo et al., IJCAI 2017) over id and content fields, shaped as CVAR's ``model/deepfm.py``:
    embeddings of size ``dim`` shared by the FM and the MLP, the MLP with batch norm, ReLU and dropout."""

    def __init__(self, data: TrainData, dim: int, layers: list[int], dropout: float, multi_hot: str = "mean") -> None:
        super().__init__(data, dim, first_order=True, multi_hot=multi_hot)
        self.bias = nn.Parameter(torch.zeros(1))
        self.mlp = mlp([self.n_fields * dim, *layers, 1], act=nn.ReLU, batch_norm=True, dropout=dropout)
        for table in (self.user_id, self.item_id):
            nn.init.xavier_uniform_(table.weight)
        for table in (self.user_id_linear, self.item_id_linear):
            nn.init.zeros_(table.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor, item_id_emb: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) logits of (user, item) rows; ``item_id_emb`` (B, d) replaces the item-id embedding."""
        fields, wide = self.fm_part(users, items, item_id_emb)
        return wide + self.mlp(fields.flatten(1))[:, 0]

    def fm_part(self, users: torch.Tensor, items: torch.Tensor,
                item_id_emb: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The field embeddings (B, n_fields, d) and the FM's logit (B,): bias, first order and pairwise terms."""
        fields = self.field_stack(users, items, item_id_emb)  # (B, n_fields, d)
        linear = (self.bias + self.user_id_linear(users)[:, 0] + self.item_id_linear(items)[:, 0]
                  + self.user_fields.first_order(self.user_x).index_select(0, users)
                  + self.item_fields.first_order(self.item_x).index_select(0, items))
        return fields, linear + 0.5 * (fields.sum(1).pow(2) - fields.pow(2).sum(1)).sum(1)


def unseen_items(data: TrainData) -> torch.Tensor:
    """(n_items,) True for items with no training row at all: their id embeddings were never trained."""
    counts = torch.bincount(data.train["item"], minlength=data.n_items)
    return counts == 0


def score_pairs(predict: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, C) logits of every (user, candidate) pair of a scoring batch, through a method's pointwise ``predict``."""
    cand = batch["cand"]
    users = batch["user"][:, None].expand_as(cand).reshape(-1)
    return predict({"user": users, "item": cand.reshape(-1)}).view(cand.shape)


class CrossNet(nn.Module):
    """DCN's cross network (Wang et al. 2017, eq. 3): x_{l+1} = x_0 (x_l . w_l) + b_l + x_l on the flat input."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.w = nn.ParameterList(nn.Parameter(torch.empty(dim).uniform_(-0.01, 0.01)) for _ in range(layers))
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(dim)) for _ in range(layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for w, b in zip(self.w, self.b):
            x = x0 * (x @ w)[:, None] + b + x
        return x


class DCNNet(FieldEmbeddings):
    """Deep & Cross Network over the same fields as DeepFM: the cross network and an MLP read the flattened field
    embeddings side by side; one linear layer maps their concatenation to the logit (CVAR's ``model/dcn.py``)."""

    def __init__(self, data: TrainData, dim: int, cross_layers: int, layers: list[int], dropout: float,
                 multi_hot: str = "mean") -> None:
        super().__init__(data, dim, first_order=False, multi_hot=multi_hot)
        width = self.n_fields * dim
        self.cross = CrossNet(width, cross_layers)
        self.mlp = mlp([width, *layers], act=nn.ReLU, batch_norm=True, dropout=dropout, last_linear=False)
        self.out = nn.Linear(width + (layers[-1] if layers else width), 1)
        for table in (self.user_id, self.item_id):
            nn.init.xavier_uniform_(table.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor, item_id_emb: torch.Tensor | None = None) -> torch.Tensor:
        x0 = self.field_stack(users, items, item_id_emb).flatten(1)
        return self.out(torch.cat([self.cross(x0), self.mlp(x0)], dim=1))[:, 0]
