"""The ``warmup`` protocol's evaluation loop: cold start, then three warm-up stages, each followed by scoring.

The harness owns the loop so that every method gets the same optimiser and budget (the protocol's
``warm_batch`` and ``warm_epochs``: Adam, no weight decay, a fresh optimiser per stage, as CVAR's ``main.py`` does
per phase; the learning rate chosen per method from ``warm_lrs`` on the validation items by one rule). Only the tensors a method returns from ``warm_parameters()`` are
updated; with a fresh Adam and no decay, rows of an embedding table that get no gradient stay unchanged.
Each evaluation part (validation items, test items) warms up its own copy of the fitted method, so the
test copy never saw a validation item's warm-up.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from benchmark import pointwise
from benchmark.method import Method, TrainData, require_finite
from benchmark.protocols.warmup import STAGES, warm_lrs
from benchmark.tensors import TensorTable

EVAL_BATCH = 4096
WARM_FIELDS = ("user", "item", "label", "time", "stage")


def fork(method: Method) -> Method:
    """A deep copy that shares the trial context and any training data (read-only) with ``method``."""
    memo: dict[int, Any] = {id(method.ctx): method.ctx}
    for value in vars(method).values():
        if isinstance(value, (TrainData, TensorTable)):
            memo[id(value)] = value
    return copy.deepcopy(method, memo)


@torch.no_grad()
def predict_rows(method: Method, rows: TensorTable) -> np.ndarray:
    out = []
    for idx in rows.index_batches(EVAL_BATCH, shuffle=False):
        logits = method.predict({"user": rows["user"][idx], "item": rows["item"][idx]})
        if logits.shape != idx.shape:
            raise ValueError(f"method {method.name!r}: predict returned shape {tuple(logits.shape)}, "
                             f"expected ({len(idx)},)")
        out.append(logits.float().cpu())
    scores = torch.cat(out) if out else torch.zeros(0)
    require_finite(scores, f"method {method.name!r}: predict()")
    return scores.numpy()


def warm_up_stage(method: Method, rows: dict[str, torch.Tensor], params: dict[str, Any],
                  generator: torch.Generator) -> dict[str, Any]:
    """One stage's warm-up: ``warm_epochs`` shuffled passes of Adam(``warm_lr``) over the stage's rows."""
    tensors = list(method.warm_parameters())
    if not tensors:
        return {"updated": False}
    for p in tensors:
        p.requires_grad_(True)
    opt = torch.optim.Adam(tensors, lr=params["warm_lr"])
    n = len(rows["user"])
    losses = []
    for _ in range(params["warm_epochs"]):
        order = torch.randperm(n, generator=generator).to(rows["user"].device)
        for start in range(0, n, params["warm_batch"]):
            idx = order[start:start + params["warm_batch"]]
            loss = method.warm_loss({k: v[idx] for k, v in rows.items()})
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return {"updated": True, "lr": params["warm_lr"], "steps": len(losses),
            "mean_loss": float(np.mean(losses)) if losses else None}


def is_static(method: Method) -> bool:
    """Nothing to warm up and no observe step: the cold-start scores stand at every stage."""
    return not method.warm_parameters() and type(method).observe is Method.observe


def choose_lr(method: Method, eval_rows: TensorTable, warm_rows: TensorTable, params: dict[str, Any],
              seed: int) -> tuple[float, dict[str, float], tuple[dict[str, Any], dict[str, np.ndarray]] | None]:
    """The warm-up learning rate for ``method``, chosen on the *validation* part's rows (the caller passes them):
    the rate of ``warm_lrs`` with the best pooled AUC averaged over the three warm-up stages (per-item AUC ranks
    one item's users and barely moves with warm-up), the smaller rate on a tie; every method gets the same grid and
    rule. Returns (rate, pooled AUC per rate, the validation evaluation at that rate or None when nothing was
    searched), so the caller does not warm the validation items up again."""
    grid = warm_lrs(params)
    if len(grid) == 1 or is_static(method):
        return (grid[0] if len(grid) == 1 else float(params["warm_lr"])), {}, None
    scores: dict[float, float] = {}
    runs = {}
    for lr in grid:
        runs[lr] = evaluate(method, eval_rows, warm_rows, {**params, "warm_lr": lr}, seed)
        scores[lr] = float(np.mean([runs[lr][0][s]["auc_pooled"] for s in STAGES[1:]]))
    best = max(grid, key=lambda lr: (scores[lr], -lr))
    return best, {str(lr): v for lr, v in scores.items()}, runs[best]


def evaluate(method: Method, eval_rows: TensorTable, warm_rows: TensorTable, params: dict[str, Any], seed: int,
             stages: tuple[str, ...] = STAGES) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Summary per stage and per-item vectors (one row per (item, stage)) for one evaluation part.

    ``method`` itself is left as fitted: the stages run on a fork.
    """
    m = fork(method) if len(stages) > 1 else method
    generator = torch.Generator().manual_seed(seed)
    stage_of = warm_rows["stage"]
    labels = eval_rows.numpy("label")
    items = eval_rows.numpy("item")
    summary: dict[str, Any] = {}
    cols: dict[str, list[np.ndarray]] = {"item": [], "stage": [], "auc": [], "logloss": []}
    # a method with nothing to warm up and no observe step reports its cold-start scores at every stage
    static = len(stages) == 1 or is_static(m)
    logits = np.zeros(0)
    for s, stage in enumerate(stages):
        info: dict[str, Any] = {}
        if s > 0 and static:
            info = {"updated": False}
        elif s > 0:
            idx = torch.nonzero(stage_of == s).squeeze(1)
            rows = {k: warm_rows[k][idx] for k in WARM_FIELDS}
            info = warm_up_stage(m, rows, params, generator)
            seen = torch.nonzero((stage_of >= 1) & (stage_of <= s)).squeeze(1)
            m.observe({k: warm_rows[k][seen] for k in WARM_FIELDS})
        if s == 0 or not static:
            logits = predict_rows(m, eval_rows)
        im = pointwise.per_item(items, labels, logits, m.calibrated)
        summary[stage] = {"auc": float(im.auc.mean()) if len(im.auc) else None,
                          "auc_pooled": pointwise.auc(labels, logits),
                          "logloss": pointwise.logloss(labels, logits) if m.calibrated else None,
                          "n_events": int(len(im.items)), "n_items_one_class": im.n_one_class,
                          "n_rows": int(len(labels)), **({"warm_up": info} if info else {})}
        cols["item"].append(im.items)
        cols["stage"].append(np.full(len(im.items), s, dtype=np.int8))
        cols["auc"].append(im.auc)
        cols["logloss"].append(im.logloss)
    vectors = {k: np.concatenate(v) for k, v in cols.items()}
    return summary, vectors
