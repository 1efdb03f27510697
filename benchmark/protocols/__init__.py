"""Protocols turn Interactions into frozen, hashed Splits. ``get_split`` is the cached entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.config import parse_value
from benchmark.data.card import get_card
from benchmark.data.interactions import Interactions
from benchmark.errors import BenchError
from benchmark.protocols import cold, loo, warmup
from benchmark.protocols.split import Split, cache_root

PROTOCOLS = {"loo": loo, "cold": cold, "warmup": warmup}


def split_path(dataset: str, protocol: str, split_hash: str) -> Path:
    return cache_root() / "splits" / dataset / f"{protocol}-{split_hash[:20]}.npz"


def get_split(inter: Interactions, protocol: str, overrides: dict[str, Any] | None = None,
              rebuild: bool = False) -> tuple[Split, bool]:
    """Return (split, was_cached). The cache key is the split hash, so any change in data or params misses."""
    if protocol not in PROTOCOLS:
        raise BenchError(f"unknown protocol {protocol!r}; implemented: {', '.join(PROTOCOLS)}")
    module = PROTOCOLS[protocol]
    params = module.resolve_params(get_card(inter.dataset).protocol_defaults(protocol), overrides)
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
