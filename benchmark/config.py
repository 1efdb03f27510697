"""Canonical JSON, content hashes and typed parsing of ``--set METHOD.KEY=VALUE`` options.

Identity in promo-bench (split hashes, trial ids) always comes from sha256 over canonical JSON,
never from timestamps or counters.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from benchmark.errors import BenchError


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, no NaN: the same object always gives the same string."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()


def parse_value(raw: str, default: Any, where: str) -> Any:
    """Parse ``raw`` to the type of ``default`` (bool/int/float/str, or a list or dict given as JSON);
    ``where`` names the option in errors."""
    if isinstance(default, (list, tuple, dict)):
        kind = "an object" if isinstance(default, dict) else "a list"
        try:
            value = json.loads(raw)
        except ValueError:
            raise BenchError(f"{where}: expected {kind} in JSON, e.g. {json.dumps(default)}, got {raw!r}") from None
        if not isinstance(value, dict if isinstance(default, dict) else list):
            raise BenchError(f"{where}: expected {kind} in JSON, e.g. {json.dumps(default)}, got {raw!r}")
        return value
    if isinstance(default, bool):
        low = raw.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise BenchError(f"{where}: expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise BenchError(f"{where}: expected an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise BenchError(f"{where}: expected a number, got {raw!r}") from None
    return raw


def parse_set_options(items: list[str], flag: str = "--set", what: str = "METHOD") -> dict[str, dict[str, str]]:
    """Split ``["promo.audit_leak=true", ...]`` into ``{"promo": {"audit_leak": "true"}}`` (values still raw)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key = item.split("=", 1)[0]
        owner, _, opt = key.partition(".")
        if "=" not in item or not owner or not opt:
            raise BenchError(f"{flag} {item!r}: expected {what}.KEY=VALUE, for example "
                             f"{'dssm.epochs=5' if what == 'METHOD' else 'loo.candidates=all'}")
        out.setdefault(owner, {})[opt] = item.split("=", 1)[1]
    return out


def resolve_options(
    method: str, defaults: Mapping[str, Any], budget_overrides: Mapping[str, Any], raw: Mapping[str, str],
    ranges: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (full options, user-changed options that differ from the budget defaults). Every numeric option
    is checked against its range (``benchmark.ranges``; ``ranges``: the method's own declarations) here, when
    the run is planned, so a bad value stops the run before any trial rather than failing or misleading in one."""
    from benchmark.ranges import option_problem

    base = dict(defaults)
    base.update(budget_overrides)
    changed: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in base:
            known = ", ".join(sorted(base)) or "(none)"
            raise BenchError(f"--set {method}.{key}: unknown option of method {method!r}; known options: {known}")
        parsed = parse_value(value, base[key], f"--set {method}.{key}")
        if parsed != base[key]:
            changed[key] = parsed
        base[key] = parsed
    for key, value in base.items():
        problem = option_problem(key, value, ranges)
        if problem:
            where = f"--set {method}.{key}={raw[key]}" if key in raw else f"method {method!r}: default {key}"
            raise BenchError(f"{where}: {problem}")
    return base, changed


def _fmt(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def variant_label(changed: Mapping[str, Any]) -> str:
    """A short, stable label for non-default options ('' for the defaults)."""
    return ",".join(f"{k}={_fmt(v)}" for k, v in sorted(changed.items()))
