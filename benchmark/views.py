"""Device views of a split: training data and evaluation events, built once and shared by trials.

A trial whose method has ``audit_leak = true`` gets the released code's leaky windows
(``loo.audit_windows``) in place of the causal ones; nothing else changes.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.data.interactions import Interactions
from benchmark.method import TrainData
from benchmark.protocols import PROTOCOLS, loo
from benchmark.protocols.split import Split
from benchmark.tensors import TensorTable


def training_meta(meta: dict, audit: bool) -> dict:
    """Split metadata a method may see: the per-part counts describe validation and test events, so they stay out."""
    implicit = PROTOCOLS[meta["protocol"]].IMPLICIT
    return {k: v for k, v in meta.items() if k != "parts"} | {"audit": audit, "implicit": implicit}


class SplitViews:
    def __init__(self, split: Split, inter: Interactions, device: torch.device) -> None:
        self.split, self.inter, self.device = split, inter, device
        self._audit: dict[str, np.ndarray] | None = None
        self._tables: dict[tuple[str, bool], TensorTable] = {}
        self._train: dict[bool, TrainData] = {}

    def _arrays(self, part: str, audit: bool) -> dict[str, np.ndarray]:
        arrays = self.split.part(part)
        if audit:
            if self._audit is None:
                self._audit = loo.audit_windows(self.inter, self.split)
            arrays.update({k[len(part) + 1:]: v for k, v in self._audit.items() if k.startswith(part + "/")})
        return arrays

    def events(self, part: str, audit: bool = False) -> TensorTable:
        if (part, audit) not in self._tables:
            self._tables[(part, audit)] = TensorTable(self._arrays(part, audit), self.device)
        return self._tables[(part, audit)]

    def train(self, audit: bool = False) -> TrainData:
        if audit not in self._train:
            item = self.split.part("item")
            d = self.device
            self._train[audit] = TrainData(
                train=TensorTable(self._arrays("train", audit), d), n_users=self.inter.n_users,
                n_items=self.inter.n_items, user_features=torch.from_numpy(self.inter.user_features).to(d),
                item_features=torch.from_numpy(self.inter.item_features).to(d),
                item_train_pos_count=torch.from_numpy(item["train_pos_count"]).to(d),
                meta=training_meta(self.split.meta, audit),
                user_feature_names=tuple(self.inter.user_feature_names),
                item_feature_names=tuple(self.inter.item_feature_names))
        return self._train[audit]
