"""The frozen Split: arrays plus metadata, cached on disk under its hash and verified on load."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import BenchError
from benchmark.files import atomic_write

PARTS = ("valid", "test")


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}\n".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Split:
    """A protocol's output. ``arrays`` keys are ``train/...``, ``valid/...``, ``test/...`` and ``item/...``.

    ``meta`` holds the hash, the protocol parameters and the counts a reader of a result needs.
    """

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def hash(self) -> str:
        return self.meta["split_hash"]

    def part(self, name: str) -> dict[str, np.ndarray]:
        prefix = name + "/"
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    def save(self, path: Path) -> None:
        """Atomic (benchmark/files.py): a reader never sees a half-written split."""
        meta = dict(self.meta, content_sha256=content_hash(self.arrays))
        atomic_write(path, lambda fh: np.savez(fh, __meta__=np.array(json.dumps(meta)), **self.arrays))

    @classmethod
    def load(cls, path: Path) -> "Split":
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["__meta__"]))
                arrays = {k: data[k] for k in data.files if k != "__meta__"}
        except (OSError, ValueError, KeyError) as exc:
            raise BenchError(f"{path}: cached split is unreadable ({exc}); delete it to rebuild") from None
        if content_hash(arrays) != meta.get("content_sha256"):
            raise BenchError(f"{path}: cached split's content does not match its recorded sha256; delete it to rebuild")
        return cls(meta=meta, arrays=arrays)
