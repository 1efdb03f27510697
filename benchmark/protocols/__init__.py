"""Protocols turn Interactions into frozen, hashed Splits. ``get_split`` is the cached entry point."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmark import plugins
from benchmark.config import parse_value
from benchmark.data.card import get_card
from benchmark.data.interactions import Interactions
from benchmark.errors import BenchError
from benchmark.files import cache_root
from benchmark.protocols import cold, loo, temporal, warmup
from benchmark.protocols.split import Split

GROUP = "promo_bench.protocols"
# What a protocol module must define; EVALUATION must be one the harness evaluates ("sampled", "full", "pointwise").
# Optional: LIKE = "loo" lets every method that supports that protocol run under this one too.
REQUIRED = ("NAME", "VERSION", "EVALUATION", "IMPLICIT", "VALID_METRIC", "PROVIDES", "DEFAULTS", "resolve_params",
            "split_hash", "build")


def check_protocol(module: Any, name: str) -> ModuleType:
    """A plugin protocol module must define REQUIRED, its NAME must be its registered name, and its EVALUATION one
    the harness evaluates."""
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing or getattr(module, "NAME", None) != name or module.EVALUATION not in ("sampled", "full", "pointwise"):
        raise TypeError(f"does not keep the protocol interface: missing {', '.join(missing) or 'nothing'}; NAME must "
                        f"be {name!r}; EVALUATION one of sampled, full, pointwise (see benchmark/protocols/loo.py)")
    return module


class ProtocolRegistry(Mapping):
    """The built-in protocols plus those of the ``promo_bench.protocols`` entry-point group (value: a module),
    through the one plugin registry (benchmark/plugins.py): a plugin module is imported only when its protocol is
    used, and one that fails to import or to keep the interface is an error naming it, never a crash of the others."""

    def __init__(self, builtin: dict[str, ModuleType]) -> None:
        self._builtin = builtin
        self._entries: dict[str, plugins.Entry] | None = None

    def entries(self) -> dict[str, plugins.Entry]:
        if self._entries is None:
            self._entries = plugins.discover(GROUP, "protocol", check_protocol,
                                             reserved={n: "promo-bench (built-in)" for n in self._builtin})
        return self._entries

    def __getitem__(self, name: str) -> ModuleType:
        if name in self._builtin:
            return self._builtin[name]
        entry = self.entries().get(name)
        if entry is None:
            raise KeyError(name)
        return entry.load()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._builtin) + [n for n in self.entries() if n not in self._builtin])

    def __len__(self) -> int:
        return len(list(iter(self)))


PROTOCOLS = ProtocolRegistry({"loo": loo, "temporal": temporal, "cold": cold, "warmup": warmup})


def split_path(dataset: str, protocol: str, split_hash: str) -> Path:
    return cache_root() / "splits" / dataset / f"{protocol}-{split_hash[:20]}.npz"


def get_split(inter: Interactions, protocol: str, overrides: dict[str, Any] | None = None,
              rebuild: bool = False) -> tuple[Split, bool]:
    """Return (split, was_cached). The cache key is the split hash, so any change in data or params misses."""
    if protocol not in PROTOCOLS:
        raise BenchError(f"unknown protocol {protocol!r}; implemented: {', '.join(PROTOCOLS)}")
    module = PROTOCOLS[protocol]
    # a card without a section for this protocol (a plugin protocol, a plugin dataset) takes its defaults
    params = module.resolve_params(get_card(inter.dataset).protocols.get(protocol, {}), overrides)
    expected = module.split_hash(inter.canonical_hash(), params)
    path = split_path(inter.dataset, protocol, expected)
    if path.is_file() and not rebuild:
        split = Split.load(path)
        if split.hash != expected:
            raise BenchError(f"{path}: cached split has hash {split.hash}, expected {expected}; delete it to rebuild")
        return split, True
    split = module.build(inter, params)
    split.save(path)
    return split, False


def parse_protocol_options(raw: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Typed ``--protocol-set loo.KEY=VALUE`` overrides (types from each protocol's defaults)."""
    out: dict[str, dict[str, Any]] = {}
    for protocol, values in raw.items():
        if protocol not in PROTOCOLS:
            raise BenchError(f"--protocol-set {protocol}.…: unknown protocol; implemented: {', '.join(PROTOCOLS)}")
        defaults = PROTOCOLS[protocol].DEFAULTS
        for key, value in values.items():
            if key not in defaults:
                raise BenchError(f"--protocol-set {protocol}.{key}: unknown parameter; known: {', '.join(defaults)}")
            out.setdefault(protocol, {})[key] = parse_value(value, defaults[key], f"--protocol-set {protocol}.{key}")
    return out
