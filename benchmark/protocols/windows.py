"""Causal windows: the latest k entries of a key (a user or an item) strictly before a time.

One code path serves training rows and evaluation candidates alike, and methods may build their
own windows with it (PROMO's scored pinnacle feedback). Every window is built from training rows
only, and an entry counts as "before" a query only if its timestamp is strictly smaller: an
interaction in the same second (or day) as the event never enters the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 1 << 18  # queries per block in `window`: its int64 temporaries stay near 100 MiB at k = 50


@dataclass(frozen=True)
class Window:
    """Left-padded windows: the latest entry is in the last column; padding is 0 with mask False."""

    values: np.ndarray  # int32 (n, k)
    mask: np.ndarray  # bool (n, k)
    tie_excluded: int  # entries earlier in the total order that the strict-time rule removed


class CausalIndex:
    """Entries (key, value) at positions of the log's total order (stable sort on time, row).

    ``positions`` must increase with ``times`` (they are positions in the time-sorted log), so that
    sorting by (key, position) also sorts by (key, time).
    """

    def __init__(self, keys: np.ndarray, values: np.ndarray, positions: np.ndarray, times: np.ndarray,
                 n_keys: int) -> None:
        order = np.lexsort((positions, keys))
        self._keys = keys[order].astype(np.int64)
        self._values = values[order].astype(np.int32)
        self._pos_span = np.int64(int(positions.max()) + 2 if len(positions) else 2)
        self._by_pos = self._keys * self._pos_span + positions[order].astype(np.int64)
        self._times = np.unique(times)
        self._time_span = np.int64(len(self._times) + 1)
        rank = np.searchsorted(self._times, times[order], side="left").astype(np.int64)
        self._by_time = self._keys * self._time_span + rank
        self._start = np.searchsorted(self._keys, np.arange(n_keys, dtype=np.int64), side="left")

    def window(self, keys: np.ndarray, times: np.ndarray, k: int, positions: np.ndarray | None = None,
               inclusive: bool = False) -> Window:
        """Latest ``k`` values of each query key with a timestamp strictly before the query's.

        With ``positions`` (the queries' places in the total order) the result also counts the
        entries the strict-time rule removed. ``inclusive=True`` reproduces the released PROMO code
        (entries up to and including the query's own position); it exists for the audit flag only.
        """
        keys = np.asarray(keys, dtype=np.int64).ravel()
        start = self._start[keys]
        c_time = np.searchsorted(self._by_time, keys * self._time_span
                                 + np.searchsorted(self._times, np.asarray(times).ravel(), side="left"), side="left")
        tie = 0
        if positions is not None:
            positions = np.minimum(np.asarray(positions, dtype=np.int64).ravel(), self._pos_span - 1)
            c_order = np.searchsorted(self._by_pos, keys * self._pos_span + positions + (1 if inclusive else 0),
                                      side="left")
            if inclusive:
                c_time = c_order
            else:
                tie = int((np.minimum(k, c_order - start) - np.minimum(k, c_time - start)).sum())
        elif inclusive:
            raise ValueError("inclusive windows need the queries' positions")
        values = np.zeros((len(keys), k), dtype=np.int32)
        mask = np.zeros((len(keys), k), dtype=bool)
        offsets = np.arange(k, dtype=np.int64)[None, :] - k
        for a in range(0, len(keys), CHUNK):  # in blocks: the int64 positions of 14M queries x 50 are 5.3 GiB
            idx = c_time[a:a + CHUNK, None] + offsets
            np.greater_equal(idx, start[a:a + CHUNK, None], out=mask[a:a + CHUNK])
            if len(self._values):
                np.clip(idx, 0, len(self._values) - 1, out=idx)
                values[a:a + CHUNK] = np.where(mask[a:a + CHUNK], self._values[idx], 0)
        return Window(values=values, mask=mask, tie_excluded=tie)
