"""Early stopping on the harness's validation signal (loo: HR@10; cold: NDCG@20 over all items), keeping the
best weights in memory."""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import torch

from benchmark.protocols import PROTOCOLS


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

    def info(self, metric: str = "hr@10") -> dict[str, Any]:
        best = self.best_value if self.best_epoch >= 0 else None
        return {"best_epoch": self.best_epoch, "valid_metric": metric, "best_valid": best, "epochs_run": self.epochs,
                "valid_curve": [round(v, 6) for v in self.curve]}


def train_epochs(method: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 batches: Callable[[], Iterable[torch.Tensor]],
                 step: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]],
                 epochs: int, patience: int, desc: str, validate_first: bool = False) -> dict[str, Any]:
    """The epoch loop every learned method shares: one optimiser step per index batch, validation HR@10
    after each epoch through the harness, early stopping, and the best epoch's weights restored.

    ``step(idx)`` returns the loss, or (loss, named parts to log). With ``validate_first`` the model as
    given counts as epoch 0, so training is kept only if validation says it helps.
    """
    stopper = EarlyStopping(model, patience)
    if validate_first:
        model.eval()
        stopper.step(method.ctx.validate(method))
    losses: dict[str, list[float]] = {"total": []}
    rows = 0
    for _epoch in method.ctx.progress(range(epochs), desc):
        model.train()
        sums: dict[str, torch.Tensor] = {}  # on the device: no host synchronisation per step
        n = 0
        for idx in batches():
            out = step(idx)
            loss, parts = out if isinstance(out, tuple) else (out, {})
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for key, val in {"total": loss, **parts}.items():
                term = val.detach().double() * len(idx)
                sums[key] = sums[key] + term if key in sums else term
            n += len(idx)
        rows += n
        for key, val in sums.items():
            losses.setdefault(key, []).append(round(float(val) / max(n, 1), 6))
        model.eval()
        if stopper.step(method.ctx.validate(method)):
            break
    stopper.restore()
    model.eval()
    info = {**stopper.info(PROTOCOLS[method.ctx.protocol].VALID_METRIC), "train_loss": losses["total"], "train_rows_seen": rows}
    if len(losses) > 1:
        info["loss_parts"] = losses
    return info
