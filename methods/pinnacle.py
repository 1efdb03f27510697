"""PROMO's ``pinnacle = scored`` feedback: the paper's top-k by value, as promo-spec section 2 proposes.

For an item at time t: its top-k positive users by feedback value (ties broken by recency) among
training rows strictly before t. An item with none borrows them from its nearest items that are warm
*at t* (at least tau training positives strictly before t; cosine similarity of the frozen backbone's
item vectors), again only from rows before t. Whether a neighbour is warm is decided per query time,
so no later row decides who lends feedback.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from benchmark.protocols.windows import CausalIndex
from benchmark.tensors import TensorTable

MAX_LEVELS = 20
SHORTLIST = 50  # most similar items considered per item; the first ``neighbours`` warm at the query time lend


def first_valid(values: np.ndarray, mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``k`` valid entries of each row, in order (rows are already in preference order)."""
    order = np.argsort(~mask, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(values, order, 1), np.take_along_axis(mask, order, 1)


class ScoredPinnacle:
    def __init__(self, train: TensorTable, item_vectors: torch.Tensor, warm_at: Callable[[np.ndarray, np.ndarray],
                 np.ndarray], k: int, neighbours: int = 10) -> None:
        user, item = train.numpy("user"), train.numpy("item")
        value, label = train.numpy("value"), train.numpy("label")
        pos, time = train.numpy("place"), train.numpy("time")
        positive = label == 1
        self.levels = sorted(np.unique(value[positive]).tolist(), reverse=True)
        if len(self.levels) > MAX_LEVELS:
            raise ValueError(f"pinnacle=scored needs a discrete feedback value (such as a rating); this dataset's "
                             f"positives have {len(self.levels)} distinct values")
        n_items = len(item_vectors)
        self.k, self.n_neighbours, self.warm_at = k, neighbours, warm_at
        self.tiers = [CausalIndex(item[sel], user[sel], pos[sel], time[sel], n_items)
                      for sel in (positive & (value == lv) for lv in self.levels)]
        vecs = torch.nn.functional.normalize(item_vectors.detach().float().cpu(), dim=1)
        sim = vecs @ vecs.T
        sim.fill_diagonal_(-2.0)  # never one's own neighbour
        self.shortlist = torch.topk(sim, min(SHORTLIST, n_items - 1), dim=1).indices.numpy()  # most similar first

    def direct(self, items: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Highest value tier first, latest first within a tier; at most k users."""
        vals, masks = [], []
        for index in self.tiers:
            w = index.window(items, times, self.k)
            vals.append(w.values[:, ::-1])
            masks.append(w.mask[:, ::-1])
        return first_valid(np.concatenate(vals, 1), np.concatenate(masks, 1), self.k)

    def windows(self, items: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(users, mask, number of items that got pseudo-pinnacle feedback)."""
        items = np.asarray(items, dtype=np.int64).ravel()
        times = np.asarray(times).ravel()
        vals, mask = self.direct(items, times)
        empty = np.flatnonzero(~mask.any(1))
        if len(empty) and self.shortlist.shape[1]:
            short = self.shortlist[items[empty]]  # (E, S)
            warm = self.warm_at(short, times[empty][:, None])  # warm as of each query's time
            nb, nb_ok = first_valid(short, warm, self.n_neighbours)
            n = nb.shape[1]
            bv, bm = self.direct(nb.ravel(), np.repeat(times[empty], n))
            bm &= nb_ok.ravel()[:, None]  # a neighbour not warm at the query time lends nothing
            bv, bm = first_valid(bv.reshape(len(empty), n * self.k), bm.reshape(len(empty), n * self.k), self.k)
            vals[empty], mask[empty] = bv, bm
        return vals, mask, len(empty)
