"""Causal windows: the latest k entries of a key (a user or an item) strictly before a time.

One code path serves training rows and evaluation candidates alike. Every window is built from
training rows only, and an entry counts as "before" an event only if its timestamp is strictly
smaller: an interaction in the same second (or day) as the event never enters the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """Left-padded windows: the latest entry is in the last column; padding is 0 with mask False."""

    values: np.ndarray  # int32 (n, k)
    mask: np.ndarray  # bool (n, k)
    tie_excluded: int  # entries before the query in the total order that the strict-time rule removed


class CausalIndex:
    """Index of (key, value) entries at positions of the log's total order (stable sort on time, row).

    ``sorted_time`` is the time column of the whole log in that total order: it maps a query's
    timestamp to the first position with that timestamp, so "strictly earlier in time" becomes
    "at a smaller position than that one".
    """

    def __init__(self, keys: np.ndarray, values: np.ndarray, positions: np.ndarray, n_keys: int,
                 sorted_time: np.ndarray) -> None:
        self.span = np.int64(len(sorted_time) + 1)
        order = np.lexsort((positions, keys))
        self._keys = keys[order].astype(np.int64)
        self._values = values[order].astype(np.int32)
        self._composite = self._keys * self.span + positions[order].astype(np.int64)
        self._start = np.searchsorted(self._keys, np.arange(n_keys, dtype=np.int64), side="left")
        self._sorted_time = sorted_time

    def window(self, keys: np.ndarray, times: np.ndarray, positions: np.ndarray, k: int,
               inclusive: bool = False) -> Window:
        """Latest ``k`` values of each query key strictly before its time.

        ``inclusive=True`` reproduces the released PROMO code's leak (entries up to and including the
        query's own position); it exists for the audit flag only.
        """
        keys = np.asarray(keys, dtype=np.int64).ravel()
        positions = np.asarray(positions, dtype=np.int64).ravel()
        first_at_time = np.searchsorted(self._sorted_time, np.asarray(times).ravel(), side="left")
        base = keys * self.span
        c_order = np.searchsorted(self._composite, base + positions + (1 if inclusive else 0), side="left")
        c_time = c_order if inclusive else np.searchsorted(self._composite, base + first_at_time, side="left")
        start = self._start[keys]
        idx = c_time[:, None] - k + np.arange(k, dtype=np.int64)[None, :]
        mask = idx >= start[:, None]
        values = np.where(mask, self._values[np.clip(idx, 0, max(len(self._values) - 1, 0))] if len(self._values)
                          else 0, 0).astype(np.int32)
        tie = int((np.minimum(k, c_order - start) - np.minimum(k, c_time - start)).sum())
        return Window(values=values, mask=mask, tie_excluded=tie)
