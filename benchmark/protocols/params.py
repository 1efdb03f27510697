"""What every protocol does with its parameters: merge defaults, the dataset card and overrides with type checks,
and hash its identity (data, name, parameters, code version, split seed)."""

from __future__ import annotations

from typing import Any

from benchmark.config import sha256_json
from benchmark.errors import BenchError
from benchmark.ranges import option_problem


def merge(protocol: str, defaults: dict[str, Any], card: dict[str, Any], overrides: dict[str, Any] | None) -> dict:
    """Defaults < card < overrides; unknown keys and wrong types name their source. An int is accepted for a float."""
    params = dict(defaults)
    for source, values in (("dataset card", card), ("override", overrides or {})):
        for key, value in values.items():
            if key not in defaults:
                raise BenchError(f"{protocol} protocol ({source}): unknown parameter {key!r}; "
                                 f"known: {', '.join(defaults)}")
            want = type(defaults[key])
            if want is float and type(value) is int:
                value = float(value)
            if type(value) is not want:
                raise BenchError(f"{protocol} protocol ({source}): {key} must be {want.__name__}, got {value!r}")
            problem = option_problem(key, value)
            if problem:
                raise BenchError(f"{protocol} protocol ({source}): {key}: {problem}")
            params[key] = value
    return params


def identity_hash(protocol: str, version: str, interactions_hash: str, params: dict[str, Any], code: str = "") -> str:
    """``code``: the hash of the protocol's code (benchmark/identity.py), so an edit of a split builder never
    serves a split (or a trial) built by the old code; omitted from the hash when empty (plugin protocols that
    do not pass it keep their hashes)."""
    rest = {k: v for k, v in params.items() if k != "split_seed"}
    ident = {"interactions": interactions_hash, "protocol": protocol, "version": version, "params": rest,
             "split_seed": params["split_seed"]}
    if code:
        ident["code"] = code
    return sha256_json(ident)
