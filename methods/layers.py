"""Layers shared by several methods, written for speed where torch's own are slow on a CPU.

``Dropout``: torch's CPU dropout draws its mask with ``bernoulli_``, several times slower than comparing a uniform
draw (11.9 ms against 3.5 ms forward on a 3072 x 200 tensor, ``python perf/bench_kernels.py``; a fifth of a SASRec
step, a third of GAR's). The mask has the same law (each unit kept with probability 1 - p, kept units scaled by
1 / (1 - p)), so the method computes the same thing; only the random stream differs. Whole epochs: ``python perf/bench_methods.py --methods sasrec gar``.
"""

from __future__ import annotations

import torch
from torch import nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the mask drawn as ``rand >= p`` (same law, faster on CPU; same kernel on GPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        keep = torch.rand_like(x) >= self.p
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))
