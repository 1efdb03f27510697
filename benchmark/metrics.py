"""Ranking metrics from (s, e): candidates scoring strictly above the positive, and tied with it.

Ties are broken at random *in expectation*: the positive is equally likely to sit at any rank in
s .. s+e, so each metric is its mean over those e+1 ranks. Constant scores give exactly chance
level and the result stays deterministic. Storing (s, e) per event lets any K be derived later.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.method import require_finite

KS = (5, 10)
METRICS = tuple([f"hr@{k}" for k in KS] + [f"ndcg@{k}" for k in KS] + ["mrr"])


def rank_counts(scores: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column 0 of ``scores`` is the positive; masked-out candidates are ignored. Returns (s, e)."""
    require_finite(scores[mask], "score()")
    pos = scores[:, :1]
    others, valid = scores[:, 1:], mask[:, 1:]
    s = ((others > pos) & valid).sum(dim=1)
    e = ((others == pos) & valid).sum(dim=1)
    return s, e


def _per_rank(name: str, n: int) -> np.ndarray:
    r = np.arange(n, dtype=np.float64)
    if name == "mrr":
        return 1.0 / (r + 1.0)
    kind, k = name.split("@")
    hit = r < int(k)
    if kind in ("hr", "recall"):  # one relevant item per event: Recall@K is HR@K
        return hit.astype(np.float64)
    if kind == "ndcg":
        return np.where(hit, 1.0 / np.log2(r + 2.0), 0.0)
    raise ValueError(f"unknown metric {name!r}: expected hr@K, recall@K, ndcg@K or mrr")


def metric_from_counts(name: str, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Mean of the metric over ranks s .. s+e (0-based) for each event."""
    s = np.asarray(s, dtype=np.int64)
    e = np.asarray(e, dtype=np.int64)
    n = int((s + e).max()) + 2 if len(s) else 2
    cum = np.concatenate([[0.0], np.cumsum(_per_rank(name, n))])
    return (cum[s + e + 1] - cum[s]) / (e + 1)


def all_metrics(s: np.ndarray, e: np.ndarray) -> dict[str, np.ndarray]:
    return {m: metric_from_counts(m, s, e) for m in METRICS}


def summarise(per_event: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> dict[str, dict[str, float | None]]:
    """Means per subset (``masks``: subset -> events in it), plus event counts; None for an empty subset."""
    out: dict[str, dict[str, float | None]] = {}
    for subset, sel in masks.items():
        sel = np.asarray(sel, dtype=bool)
        out[subset] = {m: float(v[sel].mean()) if sel.any() else None for m, v in per_event.items()}
        out[subset]["n_events"] = int(sel.sum())
    return out
