"""Full-ranking evaluation (the ``cold`` protocol): every user against every candidate item, in batches.

A batch of users is scored once as a (B, n_items) matrix on the trial's device; the three
candidate sets (cold, warm, all items) are masks over that same matrix. The user's training
positives (and validation positives at test) are masked out.

Ties follow the ``loo`` rule, in expectation over a uniformly random order of tied items, so
constant scores give exactly chance level and results stay deterministic. Each relevant item's
rank is uniform over s .. s+e (s candidates strictly above it, e tied with it), hence by
linearity: Recall@K = E[hits in the top K] / |relevant|, NDCG@K = E[DCG@K] / IDCG@K. HR@K (at least
one hit) is not linear: it is 1 when a relevant item's whole tie group fits in the top K, else the
hypergeometric chance that the straddling tie group puts one of its r relevant items in its m
top-K places: 1 - C(g-r, m) / C(g, m). A top-K per row gives s exactly for every relevant item that can
reach the top K, and a count over the row gives its ties e (which may reach below the K-th place).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmark.method import require_finite
from benchmark.protocols.split import Split

KS = (10, 20)
METRICS = tuple(f"{m}@{k}" for m in ("recall", "ndcg", "hr") for k in KS)
SUBSETS = ("all", "cold", "warm")  # candidate sets; a row of results is one (user, candidate set)
EVAL_USERS = 1024


def _csr(rows: np.ndarray, cols: np.ndarray, n_rows: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    order = np.lexsort((cols, rows))
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
    return (torch.from_numpy(ptr.astype(np.int64)).to(device),
            torch.from_numpy(cols[order].astype(np.int64)).to(device))


def _dense(ptr: torch.Tensor, cols: torch.Tensor, start: int, stop: int, n_cols: int) -> torch.Tensor:
    """Rows start..stop of a CSR boolean matrix as a dense (stop-start, n_cols) tensor."""
    a, b = int(ptr[start]), int(ptr[stop])
    out = torch.zeros(stop - start, n_cols, dtype=torch.bool, device=cols.device)
    if b > a:
        counts = ptr[start + 1:stop + 1] - ptr[start:stop]
        rows = torch.repeat_interleave(torch.arange(stop - start, device=cols.device), counts)
        out[rows, cols[a:b]] = True
    return out


@dataclass
class FullRankPart:
    """One evaluation part (valid or test) of a full-ranking split, on a device."""

    part: str
    users: torch.Tensor  # (U,) evaluated users: a training row and at least one evaluation item
    rel_ptr: torch.Tensor
    rel_cols: torch.Tensor
    seen_ptr: torch.Tensor
    seen_cols: torch.Tensor
    candidates: dict[str, torch.Tensor]  # subset -> (n_items,) bool
    n_items: int

    @classmethod
    def build(cls, split: Split, part: str, device: torch.device) -> "FullRankPart":
        kind = split.arrays["item/kind"]
        ev = split.part(part)
        users = np.unique(ev["user"])
        row_of = np.full(split.meta["n_users"], -1, dtype=np.int64)
        row_of[users] = np.arange(len(users))
        seen_u = [split.arrays["train/user"]] + ([split.arrays["valid/user"]] if part == "test" else [])
        seen_i = [split.arrays["train/item"]] + ([split.arrays["valid/item"]] if part == "test" else [])
        su, si = np.concatenate(seen_u).astype(np.int64), np.concatenate(seen_i).astype(np.int64)
        keep = row_of[su] >= 0
        rel_ptr, rel_cols = _csr(row_of[ev["user"]], ev["item"].astype(np.int64), len(users), device)
        seen_ptr, seen_cols = _csr(row_of[su[keep]], si[keep], len(users), device)
        cold_code = 2 if part == "valid" else 3
        warm = torch.from_numpy(kind == 1).to(device)
        cold = torch.from_numpy(kind == cold_code).to(device)
        return cls(part, torch.from_numpy(users.astype(np.int64)).to(device), rel_ptr, rel_cols, seen_ptr, seen_cols,
                   {"all": warm | cold, "cold": cold, "warm": warm}, len(kind))


def _log_comb(n: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)


def metrics_from_scores(scores: torch.Tensor, rel: torch.Tensor, valid: torch.Tensor,
                        ks: tuple[int, ...] = KS) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-row metrics of (B, N) ``scores`` with relevant items ``rel`` among candidates ``valid``.

    Returns ({metric: (B,) float64}, n_relevant (B,)); rows with no relevant candidate get 0 and
    should be dropped by the caller.

    No full sort: a relevant item below the row's K-th best score (K the largest cut-off) has at least
    K candidates strictly above it and adds nothing to any metric at any cut-off up to K. For the others,
    ``s`` is counted among the top K and ``e`` (its ties, which may reach below the K-th place) over the row.
    """
    require_finite(scores, "score_all()")
    rel = rel & valid
    n_rel = rel.sum(1)
    b, n = scores.shape
    dev = scores.device
    x = scores.float().masked_fill(~valid, float("-inf"))
    k_max = min(max(ks), n)
    top = torch.topk(x, k_max, dim=1).values  # (B, K) descending
    row, col = rel.nonzero(as_tuple=True)  # relevant items, flat
    v = x[row, col]
    near = v >= top[row, k_max - 1]
    s = torch.full_like(v, float(max(ks)), dtype=torch.float64)  # "K or more above": no metric sees past K
    e = torch.zeros_like(s)
    if bool(near.any()):
        r_n, v_n = row[near], v[near]
        s[near] = (top[r_n] > v_n[:, None]).sum(1).double()
        e[near] = ((x[r_n] == v_n[:, None]).sum(1) - 1).double()
    out: dict[str, torch.Tensor] = {}
    nr = n_rel.double()

    def per_row(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(b, dtype=torch.float64, device=dev).index_add_(0, row, values)

    def row_max(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(b, dtype=torch.float64, device=dev).scatter_reduce_(0, row, values, "amax")

    ranks = torch.arange(n + 1, device=dev, dtype=torch.float64)
    for k in ks:
        in_top = (torch.clamp(k - s, min=0) / (e + 1)).clamp(max=1.0)
        out[f"recall@{k}"] = torch.where(nr > 0, per_row(in_top) / nr.clamp(min=1), torch.zeros_like(nr))
        gain = torch.where(ranks < k, 1.0 / torch.log2(ranks + 2.0), torch.zeros_like(ranks))
        cum = torch.cat([torch.zeros(1, device=dev, dtype=torch.float64), torch.cumsum(gain, 0)])
        si, ei = s.long().clamp(max=n), e.long()
        dcg = per_row((cum[(si + ei + 1).clamp(max=n + 1)] - cum[si]) / (e + 1))
        idcg = cum[torch.clamp(n_rel, max=k)]
        out[f"ndcg@{k}"] = torch.where(idcg > 0, dcg / idcg.clamp(min=1e-12), torch.zeros_like(dcg))
        sure = row_max((s + e < k).double()) > 0
        straddle = (s < k) & (s + e >= k)
        r = per_row(straddle.double())
        g = row_max(torch.where(straddle, e + 1, torch.zeros_like(e)))
        m = row_max(torch.where(straddle, k - s, torch.zeros_like(s)))
        possible = (r > 0) & (g - r >= m)
        p_miss = torch.where(possible, torch.exp(_log_comb(g - r, m) - _log_comb(g, m)), torch.zeros_like(g))
        p_hit = torch.where(r > 0, 1.0 - p_miss, torch.zeros_like(g))
        out[f"hr@{k}"] = torch.where(sure, torch.ones_like(p_hit), p_hit)
    return out, n_rel


@torch.no_grad()
def evaluate(method: Any, fr: FullRankPart, batch_size: int = EVAL_USERS,
             subsets: tuple[str, ...] = SUBSETS) -> dict[str, np.ndarray]:
    """Rows (user, subset code) for every user with a relevant candidate in that subset, with metric vectors.

    ``subset`` codes index ``SUBSETS``. The method's ``score_all`` sees only the users.
    """
    cols: dict[str, list[torch.Tensor]] = {"user": [], "subset": [], "n_rel": [], **{m: [] for m in METRICS}}
    n_users = len(fr.users)
    for start in range(0, n_users, batch_size):
        stop = min(start + batch_size, n_users)
        users = fr.users[start:stop]
        scores = method.score_all({"user": users})
        if tuple(scores.shape) != (stop - start, fr.n_items):
            raise ValueError(f"method {method.name!r} returned scores of shape {tuple(scores.shape)} from score_all, "
                             f"expected {(stop - start, fr.n_items)}")
        rel = _dense(fr.rel_ptr, fr.rel_cols, start, stop, fr.n_items)
        seen = _dense(fr.seen_ptr, fr.seen_cols, start, stop, fr.n_items)
        for code, subset in enumerate(SUBSETS):
            if subset not in subsets:
                continue
            valid = fr.candidates[subset][None, :] & ~seen
            values, n_rel = metrics_from_scores(scores, rel, valid)
            keep = n_rel > 0
            cols["user"].append(users[keep])
            cols["subset"].append(torch.full((int(keep.sum()),), code, dtype=torch.int8, device=users.device))
            cols["n_rel"].append(n_rel[keep])
            for m in METRICS:
                cols[m].append(values[m][keep])
    return {k: torch.cat(v).cpu().numpy() if v else np.zeros(0) for k, v in cols.items()}


def summarise(rows: dict[str, np.ndarray]) -> dict[str, dict[str, float | None]]:
    """Means per candidate set, plus the number of evaluated users in each."""
    out: dict[str, dict[str, float | None]] = {}
    for code, subset in enumerate(SUBSETS):
        sel = rows["subset"] == code
        out[subset] = {m: float(rows[m][sel].mean()) if sel.any() else None for m in METRICS}
        out[subset]["n_events"] = int(sel.sum())
    return out
