"""Metrics of labelled rows scored one by one (the ``warmup`` protocol): AUC per item, pooled AUC, log-loss.

AUC is the Mann-Whitney statistic with average ranks, so a tie between a positive and a negative counts
one half (constant scores give exactly 0.5). Per-item AUC ranks the users who rated one item: it is the
unit of the paired tests. Items whose evaluation rows have one class only have no AUC; they are left out
of every method alike and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC of ``scores`` for binary ``labels``; NaN when one class is missing."""
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata  # here, not at import: scipy.stats costs 0.8 s of every process's start-up

    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of logits, computed stably (softplus(x) - y*x)."""
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, x) - y * x))


@dataclass
class ItemMetrics:
    items: np.ndarray  # (n,) items with both classes, ascending
    auc: np.ndarray  # (n,) AUC per item
    logloss: np.ndarray  # (n,) mean log-loss per item (NaN when the method is not calibrated)
    n_one_class: int  # items left out: one class only


def per_item(items: np.ndarray, labels: np.ndarray, logits: np.ndarray, calibrated: bool) -> ItemMetrics:
    order = np.argsort(items, kind="stable")
    items, labels, logits = items[order], labels[order], logits[order]
    uniq, starts = np.unique(items, return_index=True)
    stops = np.append(starts[1:], len(items))
    keep, aucs, losses = [], [], []
    for item, a, b in zip(uniq, starts, stops):
        value = auc(labels[a:b], logits[a:b])
        if np.isnan(value):
            continue
        keep.append(item)
        aucs.append(value)
        losses.append(logloss(labels[a:b], logits[a:b]) if calibrated else float("nan"))
    return ItemMetrics(np.asarray(keep, dtype=np.int64), np.asarray(aucs), np.asarray(losses), len(uniq) - len(keep))
