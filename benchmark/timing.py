"""Where a trial's time goes: its own training, its validation passes, and the backbones it fetched.

A backbone trained inside a trial used to be charged to whichever method asked first (ALDI 53-73 s, then BPR-MF
0.1 s), so a record's time could not be read as its method's cost. The clock keeps the backbone's time apart,
with where it came from (trained here, or served from memory or disk), and counts validation only outside
backbones (a backbone's own validation is part of its cost).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator


class TrialClock:
    """Accumulates seconds per key for the trial running now; ``reset()`` between trials."""

    def __init__(self, sync: Callable[[], None] = lambda: None) -> None:
        self.sync = sync  # torch.cuda.synchronize on a GPU, so a measured span holds the work it queued
        self.reset()

    def reset(self) -> None:
        self.seconds: dict[str, float] = {}
        self.backbones: list[dict[str, Any]] = []
        self._depth = 0

    @contextmanager
    def measure(self, key: str) -> Iterator[None]:
        """Time the block under ``key``, unless a backbone is being fetched (then it is the backbone's)."""
        if self._depth:
            yield
            return
        self.sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0

    @contextmanager
    def backbone(self, name: str) -> Iterator[dict[str, Any]]:
        """Time fetching backbone ``name``; the caller sets ``note['cache']`` (trained, memory or disk)."""
        note: dict[str, Any] = {"name": name}
        outer = self._depth == 0
        self._depth += 1
        self.sync()
        t0 = time.perf_counter()
        try:
            yield note
        finally:
            self.sync()
            self._depth -= 1
            if outer:  # a backbone's own backbones are part of its time
                note["s"] = round(time.perf_counter() - t0, 4)
                self.backbones.append(note)
                self.seconds["backbone_s"] = self.seconds.get("backbone_s", 0.0) + note["s"]
