"""Fitted-method cache: pretrained backbones are trained once per (method, version, options, budget,
split, content features, harness code, seed) and shared by every trial that needs them, in memory within a
run and on disk across runs.

Options include anything that changes a backbone's training data (``audit_leak``), so a leaky
backbone never serves a clean trial. On disk, a backbone is claimed while it is trained (``benchmark.claims``):
a second process that wants the same one waits, then loads what the first saved.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch

from benchmark.claims import Claims
from benchmark.config import sha256_json
from benchmark.files import atomic_write
from benchmark.identity import harness_hash
from benchmark.method import Method

MEMORY_SLOTS = 16


class FittedCache:
    def __init__(self, disk: Path | None) -> None:
        self.disk = disk
        self._memory: OrderedDict[str, tuple[Method, dict[str, Any]]] = OrderedDict()

    @staticmethod
    def key(cls: type[Method], options: dict[str, Any], budget: str, split_hash: str, seed: int,
            features: str = "") -> str:
        from benchmark.registry import identity_version

        return sha256_json({"method": cls.name, "version": identity_version(cls), "options": options, "budget": budget,
                            "split_hash": split_hash, "seed": seed, "features": features, "harness": harness_hash(),
                            "module": cls.__module__})

    def has(self, key: str, cls: type[Method], dataset: str) -> bool:
        """True when the backbone with this key is saved on disk (for cost estimates; loading may still fail)."""
        return self.disk is not None and self._file(key, cls, dataset).is_file()

    def _file(self, key: str, cls: type[Method], dataset: str) -> Path:
        assert self.disk is not None
        return self.disk / dataset / f"{cls.name}-{key[:24]}.pt"

    def get_or_fit(self, cls: type[Method], options: dict[str, Any], budget: str, split_hash: str, dataset: str,
                   seed: int, device: torch.device, make: Callable[[], tuple[Method, Any]],
                   fit: Callable[[Method], dict[str, Any]], features: str = "") -> tuple[Method, dict[str, Any]]:
        """``make()`` builds (instance, its training data); ``fit(instance)`` trains it on a cache miss."""
        key = self.key(cls, options, budget, split_hash, seed, features)
        mem_key = f"{key}@{device}"
        if mem_key in self._memory:
            self._memory.move_to_end(mem_key)
            inst, info = self._memory[mem_key]
            return inst, {**info, "cache": "memory"}
        inst, data = make()
        if self.disk is None:
            info = {**fit(inst), "cache": "trained"}
        else:
            path = self._file(key, cls, dataset)
            lock = Claims(path.parent).wait(path.stem)  # one process trains, the others wait and load
            try:
                if path.is_file():
                    saved = torch.load(path, map_location=device, weights_only=True)
                    inst.set_state(data, saved["state"])
                    info = {**saved["fit_info"], "cache": f"disk:{path}"}
                else:
                    info = fit(inst)
                    atomic_write(path, lambda fh: torch.save({"state": inst.get_state(), "fit_info": info,
                                                              "key": key}, fh))
                    info = {**info, "cache": "trained"}
            finally:
                lock.release()
        self._memory[mem_key] = (inst, info)
        while len(self._memory) > MEMORY_SLOTS:
            self._memory.popitem(last=False)
        return inst, info
