"""An item's popularity as of a moment: its training positives strictly before that time.

CDN's frequency gate and PLATE's cold/warm domain read popularity. The released code of both ([D]) reads one
global cold flag computed on the whole log, test period included (promo-spec section 11.9). Here the count
comes from training rows only and only from those strictly earlier than the row or event being scored, so
neither the future nor any held-out event reaches the feature. Rows at the same timestamp are not counted
(the strict reading of "before t" under ties, promo-spec section 11.10).
"""

from __future__ import annotations

import torch

from benchmark.method import TrainData


class CausalPopularity:
    """``counts(items, times)``: training positives of each item with a time strictly below ``times``."""

    def __init__(self, data: TrainData) -> None:
        train = data.train
        pos = train["label"] > 0
        items, times = train["item"][pos], train["time"][pos]
        self.offset = int(times.min().item()) if len(times) else 0
        self.span = (int(times.max().item()) - self.offset + 2) if len(times) else 2
        # one sorted key per positive: item-major, then time; a count is then two binary searches
        self.keys = torch.sort(items * self.span + (times - self.offset))[0]

    def counts(self, items: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """(same shape as ``items``) int64 counts; ``times`` broadcasts against ``items`` (e.g. (B, 1) vs (B, C))."""
        t = (times - self.offset).clamp(min=0, max=self.span - 1)
        start = torch.searchsorted(self.keys, items * self.span)
        stop = torch.searchsorted(self.keys, items * self.span + t)  # left side: keys equal to t are excluded
        return stop - start


def log_count(counts: torch.Tensor) -> torch.Tensor:
    """log(1 + count) as float: the gate's input, on a scale that does not saturate for head items."""
    return torch.log1p(counts.float())
