"""Full-catalogue ranking of a sampled protocol's events, from the same fitted model as the sampled ranking.

Sampled metrics (the positive against 100 drawn negatives) can order methods differently from a ranking of the whole
catalogue (Krichene and Rendle, KDD 2020). Every ``loo`` and ``temporal`` trial therefore ranks each event's positive
twice: against its sampled candidates and against every item that exists at the event, minus the user's positives
strictly before the event's time (the target excepted). One rule for every method; the candidates' windows come from
the part's context (``context/{part}`` in the split) through the same causal index as the sampled ones.

The candidates are built in blocks of events, so memory stays bounded by the catalogue size, never events x items.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from benchmark.data.interactions import Interactions
from benchmark.protocols.split import Split
from benchmark.protocols.windows import CausalIndex

CELLS = 1 << 22  # candidate windows (events x items x k) built at once


class Catalogue:
    """The full-ranking candidate lists of one part's events: column 0 is the positive, then every other item."""

    def __init__(self, split: Split, inter: Interactions, part: str) -> None:
        order = np.argsort(inter.time, kind="stable")
        u, i, t, y = inter.user[order], inter.item[order], inter.time[order], inter.label[order]
        ctx = split.arrays[f"context/{part}"]
        pos = np.arange(len(u), dtype=np.int64)
        self.k = int(split.meta["params"]["feedback_len"])
        self.n_items = inter.n_items
        p, n = ctx & (y == 1), ctx & (y == 0)
        self.fb_pos = CausalIndex(i[p], u[p], pos[p], t[p], inter.n_items)
        self.fb_neg = CausalIndex(i[n], u[n], pos[n], t[n], inter.n_items)
        self.first = np.full(inter.n_items, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(self.first, i[ctx], t[ctx])
        # the user's positives over the log, sorted by (user, time): those strictly before an event leave its list
        every = np.flatnonzero(y == 1)
        every = every[np.lexsort((t[every], u[every]))]
        self.pos_user, self.pos_item, self.pos_time = u[every], i[every], t[every]
        self.user_start = np.searchsorted(self.pos_user, np.arange(inter.n_users + 1))
        self.events = split.part(part)

    def __len__(self) -> int:
        return len(self.events["user"])

    def block_size(self) -> int:
        return max(1, CELLS // max(1, self.n_items * self.k))

    def blocks(self) -> Iterator[dict[str, np.ndarray]]:
        """The events in order, a block at a time, as scoring tables (the fields of ``trial.SCORING_FIELDS``)."""
        ev, n_items = self.events, self.n_items
        step = self.block_size()
        items = np.arange(n_items, dtype=np.int32)
        for a in range(0, len(self), step):
            sl = slice(a, a + step)
            users, times, targets = ev["user"][sl], ev["time"][sl], ev["item"][sl]
            b = len(users)
            # the positive first, then every other item in id order
            others = np.broadcast_to(items, (b, n_items))
            rest = others[others != targets[:, None]].reshape(b, n_items - 1)
            cand = np.concatenate([targets[:, None].astype(np.int32), rest], axis=1)
            mask = self.first[cand] < times[:, None]
            for e in range(b):
                lo, hi = self.user_start[users[e]], self.user_start[users[e] + 1]
                # strictly before: a positive in the event's own second is not context (the windows' rule), and
                # masking it would show the method, through cand_mask, what the user rated with the target
                stop = lo + int(np.searchsorted(self.pos_time[lo:hi], times[e], side="left"))
                seen = self.pos_item[lo:stop]
                seen = seen[seen != targets[e]]
                if len(seen):
                    hit = seen.astype(np.int64) + (seen < targets[e])  # item x's column: x + 1 below the target
                    mask[e, hit] = False
            mask[:, 0] = True
            flat_t = np.repeat(times, n_items)
            out = {"user": users, "time": times, "item": targets, "cand": cand, "cand_mask": mask,
                   "hist": ev["hist"][sl], "hist_mask": ev["hist_mask"][sl]}
            for key, index in (("fb_pos", self.fb_pos), ("fb_neg", self.fb_neg)):
                w = index.window(cand.ravel(), flat_t, self.k)
                out[key] = w.values.reshape(b, n_items, self.k)
                out[f"{key}_mask"] = w.mask.reshape(b, n_items, self.k)
            yield out
