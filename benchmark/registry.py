"""Method registry over the ``promo_bench.methods`` entry-point group.

Built-ins are registered in pyproject.toml through the same group as third-party plugins, so the
plugin path is exercised on every run. Listing reads metadata only; a method is imported on first
use, and a plugin that fails to import is reported as unavailable without breaking the others.
``PROMO_BENCH_DISABLE_PLUGIN_AUTOLOAD=1`` keeps third-party entry points out (built-ins stay).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
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
    from benchmark.protocols import PROTOCOLS

    bad = set(obj.protocols) - set(PROTOCOLS)
    if bad or not obj.protocols:
        raise TypeError(f"protocols {sorted(obj.protocols)}: expected a non-empty subset of {sorted(PROTOCOLS)}")
    stray = {k for budget in obj.budgets.values() for k in budget} - set(obj.defaults)
    if stray:
        raise TypeError(f"budgets set options {sorted(stray)} that are not in defaults")
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


def include(path: str | os.PathLike) -> list[str]:
    """Register the methods a local Python file defines (``--include``), for experiments before packaging.

    Their origin is ``local PATH sha256:HASH`` (the file's content hash), so a result made from an
    unpackaged file still says exactly which code made it."""
    file = Path(path).resolve()
    if not file.is_file():
        raise BenchError(f"--include {path}: file not found (expected a .py file defining Method subclasses)")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    module_name = f"promo_bench_include_{file.stem}_{digest}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise BenchError(f"--include {path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise BenchError(f"--include {path}: importing it failed: {type(exc).__name__}: {exc}") from None
    module = sys.modules[module_name]
    classes = [obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, Method)
               and obj.__module__ == module_name and obj.name]
    if not classes:
        raise BenchError(f"--include {path}: defines no subclass of benchmark.method.Method with a name")
    reg = registry()
    origin = f"local {file} sha256:{digest}"
    for cls in classes:
        other = reg.get(cls.name)
        if other is not None and other.origin != origin:
            raise BenchError(f"method name {cls.name!r} is registered twice: by {other.origin} ({other.target}) "
                             f"and by {origin}")
        try:
            check_method_class(cls, cls.name)
        except TypeError as exc:
            raise BenchError(f"--include {path}: {cls.__name__}: {exc}") from None
        reg[cls.name] = MethodEntry(cls.name, f"{module_name}:{cls.__name__}", origin, False, _cls=cls)
    return [cls.name for cls in classes]
