"""Method registry over the ``promo_bench.methods`` entry-point group.

Built-ins are registered in pyproject.toml through the same group as third-party plugins, so the
plugin path is exercised on every run. Listing reads metadata only; a method is imported on first
use, and a plugin that fails to import is reported as unavailable without breaking the others.
``PROMO_BENCH_DISABLE_PLUGIN_AUTOLOAD=1`` keeps third-party entry points out (built-ins stay).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from benchmark.errors import BenchError
from benchmark.method import CAPABILITIES, Method

GROUP = "promo_bench.methods"
OWN_DIST = "promo-bench"


@dataclass
class MethodEntry:
    name: str
    target: str  # "module:Class"
    origin: str  # distribution name and version, or "local"
    builtin: bool
    _cls: type[Method] | None = field(default=None, repr=False)
    error: str | None = None

    def load(self) -> type[Method]:
        if self._cls is None and self.error is None:
            try:
                module, _, attr = self.target.partition(":")
                obj: Any = __import__(module, fromlist=[attr])
                for part in attr.split("."):
                    obj = getattr(obj, part)
                self._cls = check_method_class(obj, self.name)
            except Exception as exc:  # a broken plugin must not break the run
                self.error = f"{type(exc).__name__}: {exc}"
        if self._cls is None:
            raise BenchError(f"method {self.name!r} ({self.origin}) is unavailable: {self.error}")
        return self._cls


def check_method_class(obj: Any, name: str) -> type[Method]:
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise TypeError(f"{obj!r} is not a subclass of benchmark.method.Method")
    if obj.name != name:
        raise TypeError(f"class {obj.__name__} declares name {obj.name!r} but is registered as {name!r}")
    unknown = set(obj.requires) - CAPABILITIES
    if unknown:
        raise TypeError(f"requires unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    return obj


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (dist.metadata["Name"], dist.version) if dist is not None else ("unknown", "")


def discover() -> dict[str, MethodEntry]:
    autoload = os.environ.get("PROMO_BENCH_DISABLE_PLUGIN_AUTOLOAD", "") not in ("1", "true", "yes")
    entries: dict[str, MethodEntry] = {}
    for ep in metadata.entry_points(group=GROUP):
        dist, version = _dist_of(ep)
        builtin = dist == OWN_DIST
        if not builtin and not autoload:
            continue
        if ep.name in entries and entries[ep.name].target != ep.value:
            other = entries[ep.name]
            raise BenchError(f"method name {ep.name!r} is registered twice: by {other.origin} ({other.target}) "
                             f"and by {dist} {version} ({ep.value})")
        entries[ep.name] = MethodEntry(ep.name, ep.value, f"{dist} {version}".strip(), builtin)
    if not any(e.builtin for e in entries.values()):
        raise BenchError("promo-bench's built-in methods are not registered: install the project "
                         "(pip install -e .) so its entry points exist")
    return entries


_REGISTRY: dict[str, MethodEntry] | None = None


def registry() -> dict[str, MethodEntry]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = discover()
    return _REGISTRY


def get_method(name: str) -> type[Method]:
    reg = registry()
    if name not in reg:
        close = difflib.get_close_matches(name, list(reg), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BenchError(f"unknown method {name!r}{hint}; known methods: {', '.join(sorted(reg))}")
    return reg[name].load()
