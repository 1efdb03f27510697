"""What a trained method's size and schedule were, for its record and the table notes (issue 19 part 2).

Embedding sizes range from 16 to 200 and epoch budgets from 10 to 1000 across the methods' own papers; a reader can
only weigh a row when its capacity and schedule are stated next to it. Counted from the fitted object, so nothing
a method declares can disagree with what it trained."""

from __future__ import annotations

from typing import Any

import torch

from benchmark.budgets import size_option


def _parameters(obj: Any, seen: set[int], depth: int = 0) -> list[torch.Tensor]:
    """Trainable tensors reachable from ``obj``'s attributes: modules, parameters, and lists/dicts of them."""
    out: list[torch.Tensor] = []
    if depth > 3:
        return out
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else vars(obj).values()
    for value in values:
        if isinstance(value, torch.nn.Module):
            params = list(value.parameters())
        elif isinstance(value, torch.nn.Parameter):
            params = [value]
        elif isinstance(value, (list, tuple, dict)):
            params = _parameters(value, seen, depth + 1)
        else:
            continue
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def _backbones(method: Any) -> list[Any]:
    """Methods held by ``method`` (its backbones), and theirs."""
    from benchmark.method import Method

    out: list[Any] = []
    todo = [v for v in vars(method).values() if isinstance(v, Method)]
    while todo:
        b = todo.pop()
        if all(b is not o for o in out):
            out.append(b)
            todo += [v for v in vars(b).values() if isinstance(v, Method)]
    return out


def capacity(method: Any, options: dict[str, Any], fit_info: dict[str, Any]) -> dict[str, Any]:
    """Own parameters (the method's modules), backbone parameters (methods it holds, e.g. a frozen SASRec), its
    size option, and epochs run and best epoch where its fit reports them."""
    seen: set[int] = set()
    backbone = [p for b in _backbones(method) for p in _parameters(b, seen)]
    own = _parameters(method, seen)  # a tensor shared with a backbone counts as the backbone's
    key = size_option(options)
    size = (key, options[key] if key else None)
    return {"parameters": int(sum(p.numel() for p in own)), "backbone_parameters": int(sum(p.numel() for p in backbone)),
            "size_option": size[0], "size": size[1],
            "epochs_run": fit_info.get("epochs_run"), "best_epoch": fit_info.get("best_epoch"),
            "max_epochs": options.get("epochs"), "patience": options.get("patience")}
