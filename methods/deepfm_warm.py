"""What MetaEmb, MWUF and CVAR share: a private, frozen copy of the fitted DeepFM backbone, the new items
(no training row: their id embeddings were never trained), and scoring through ``item_embedding``.

The backbone stays in eval mode throughout: the reference code trains the generators with the backbone
in train mode, which lets batch norm overwrite the frozen backbone's running statistics.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from benchmark.method import Method, TrainData
from methods.ctr import DeepFMNet, score_pairs, unseen_items

BACKBONE = "deepfm"


class DeepFMWarmBase(Method):
    requires = frozenset({"item_features", "user_features"})
    protocols = frozenset({"loo", "cold", "warmup"})
    calibrated = True
    uses = ("deepfm",)
    net: DeepFMNet

    def attach(self, data: TrainData) -> dict[str, Any]:
        """Copy and freeze the shared backbone; return its provenance for the fit record."""
        bb = self.ctx.fitted(BACKBONE, {"multi_hot": self.options["multi_hot"]})  # the backbone's pooling
        self.net = copy.deepcopy(bb.net).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.new = unseen_items(data)
        return {"backbone": BACKBONE, "backbone_version": bb.version, "backbone_fit": bb.fitted_info,
                "n_new_items": int(self.new.sum())}

    def item_embedding(self, items: torch.Tensor) -> torch.Tensor:
        """(B, d) item-id embeddings as scored; generators override this for new items."""
        return self.net.item_id(items)

    def predict(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        return self.net(rows["user"], rows["item"], self.item_embedding(rows["item"]))

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return score_pairs(self.predict, batch)

    def warm_parameters(self) -> list[torch.Tensor]:
        return self.net.item_side()

    def write_new_items(self, table: torch.Tensor) -> None:
        """Put generated embeddings (n_items, d) into the backbone copy's table for the new items."""
        with torch.no_grad():
            w = self.net.item_id.weight
            w[self.new] = table[self.new].to(w.dtype)
