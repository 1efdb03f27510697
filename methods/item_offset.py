"""Warm-up for the dot-product methods (BPR-MF, DSSM and the content-to-collaborative cold-start family) on the
``warmup`` protocol: a per-item offset added to the item vector, learnt by the harness on warm-up rows.

These methods were published for strict cold start and define no warm-up step. The offset is the smallest
faithful extension: the method's own user and item vectors stay frozen, each new item's vector moves by
a learnt delta (zero at the base stage, so base-stage scores are the method's own), and the loss is the
harness's log-loss on ``u . (v_i + delta_i)``, the same for every such method. docs/protocols.md says so.
"""

from __future__ import annotations

import torch


class ItemOffsetWarmUp:
    """Mixin: a method defines ``_dot(users, items) -> (user vectors, item vectors)``, both (B, d), no grad needed."""

    _offset: torch.Tensor | None = None

    def _dot(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def warm_parameters(self) -> list[torch.Tensor]:
        if self._offset is None:
            with torch.no_grad():
                probe = torch.zeros(1, dtype=torch.long, device=self.device)  # type: ignore[attr-defined]
                dim = self._dot(probe, probe)[1].shape[1]
            n_items = int(self.ctx.n_items)  # type: ignore[attr-defined]
            self._offset = torch.zeros(n_items, dim, device=self.device, requires_grad=True)  # type: ignore[attr-defined]
        return [self._offset]

    def predict(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            u, v = self._dot(rows["user"], rows["item"])
        if self._offset is not None:
            v = v + self._offset.index_select(0, rows["item"])  # x[idx]'s backward is not deterministic on CPU
        return (u * v).sum(-1)
