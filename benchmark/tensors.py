"""Split arrays as device tensors, moved on first use; batches are index tensors, never Python objects."""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch


def to_tensor(arr: np.ndarray, device: torch.device) -> torch.Tensor:
    """Integers become int64 (embedding indices), booleans stay bool, floats become float32."""
    if arr.dtype.kind == "b":
        return torch.from_numpy(np.ascontiguousarray(arr)).to(device)
    if arr.dtype.kind in "iu":
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int64)).to(device)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(device)


class TensorTable(Mapping[str, torch.Tensor]):
    """Named columns of one table (training rows or evaluation events), all with the same first dimension."""

    def __init__(self, arrays: Mapping[str, np.ndarray], device: torch.device) -> None:
        self._arrays = dict(arrays)
        self._cache: dict[str, torch.Tensor] = {}
        self.device = device
        lengths = {len(a) for a in self._arrays.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {lengths}")
        self._n = lengths.pop() if lengths else 0

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._cache:
            self._cache[name] = to_tensor(self._arrays[name], self.device)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    @property
    def n_rows(self) -> int:
        return self._n

    def numpy(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def index_batches(self, batch_size: int, generator: torch.Generator | None = None,
                      shuffle: bool = True, rows: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """Row-index tensors on the device; ``rows`` restricts to a subset (e.g. positives only)."""
        base = rows if rows is not None else torch.arange(self._n, device=self.device)
        order = base[torch.randperm(len(base), generator=generator).to(self.device)] if shuffle else base
        for start in range(0, len(order), batch_size):
            yield order[start:start + batch_size]
