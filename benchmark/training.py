"""Early stopping on the harness's validation signal (HR@10), keeping the best weights in memory."""

from __future__ import annotations

import copy
from typing import Any

import torch


class EarlyStopping:
    """Call ``step(value)`` after each epoch; it returns True once ``patience`` epochs bring no gain."""

    def __init__(self, module: torch.nn.Module, patience: int) -> None:
        self.module = module
        self.patience = patience
        self.best_value = float("-inf")
        self.best_epoch = -1
        self.epochs = 0
        self.curve: list[float] = []
        self._best_state: dict[str, Any] | None = None

    def step(self, value: float) -> bool:
        self.curve.append(float(value))
        epoch = self.epochs
        self.epochs += 1
        if value > self.best_value:
            self.best_value, self.best_epoch = float(value), epoch
            self._best_state = copy.deepcopy(self.module.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self) -> None:
        if self._best_state is not None:
            self.module.load_state_dict(self._best_state)

    def info(self) -> dict[str, Any]:
        best = self.best_value if self.best_epoch >= 0 else None
        return {"best_epoch": self.best_epoch, "best_valid_hr@10": best, "epochs_run": self.epochs,
                "valid_curve": [round(v, 6) for v in self.curve]}
