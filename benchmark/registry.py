"""Method registry: the ``promo_bench.methods`` entry-point group (benchmark/plugins.py) plus ``--include`` files.

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
from pathlib import Path
from typing import Any

from benchmark import plugins
from benchmark.space import check_space
from benchmark.errors import BenchError
from benchmark.method import CAPABILITIES, PATIENCE, Method
from benchmark.plugins import Entry

GROUP = "promo_bench.methods"
OWN_DIST = plugins.OWN_DIST
MethodEntry = Entry  # a method's registry entry (benchmark/plugins.py)


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
    check_space(name, obj.search_space, obj.defaults)
    patience = obj.defaults.get("patience")
    if patience is not None and patience != PATIENCE and not obj.patience_exception:
        raise TypeError(f"default patience {patience}, not the rule's {PATIENCE}: set patience_exception to say why")
    return obj


def discover() -> dict[str, MethodEntry]:
    entries = plugins.discover(GROUP, "method", check_method_class)
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


def identity_version(cls: type[Method], _seen: tuple[str, ...] = ()) -> str:
    """The version that joins a trial id: the method's own plus each backbone's (``uses``), nested, e.g.
    ``2+dssm-sasrec:(1+sasrec:2)`` for ``promo``; a method without backbones keeps its plain version."""
    if cls.name in _seen:
        raise BenchError(f"methods {' -> '.join((*_seen, cls.name))} use each other in a cycle")
    if not cls.uses:
        return str(cls.version)
    parts = []
    for name in sorted(cls.uses):
        inner = identity_version(get_method(name), (*_seen, cls.name))
        parts.append(f"{name}:{inner}" if "+" not in inner else f"{name}:({inner})")
    return f"{cls.version}+" + "+".join(parts)


def include(path: str | os.PathLike) -> list[str]:
    """Register the methods a local Python file defines (``--include``), for experiments before packaging.

    Their origin is ``local NAME.py sha256:HASH`` (the file's name and content hash, not its folder: a table
    caption must not print a local path, and the same file on another machine is the same code), so a result
    made from an unpackaged file still says exactly which code made it."""
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
    origin = f"local {file.name} sha256:{digest}"
    for cls in classes:
        other = reg.get(cls.name)
        if other is not None and other.origin != origin:
            raise BenchError(f"method name {cls.name!r} is registered twice: by {other.origin} ({other.target}) "
                             f"and by {origin}")
        try:
            check_method_class(cls, cls.name)
        except TypeError as exc:
            raise BenchError(f"--include {path}: {cls.__name__}: {exc}") from None
        reg[cls.name] = MethodEntry("method", cls.name, f"{module_name}:{cls.__name__}", origin, False,
                                    check_method_class, _obj=cls)
    return [cls.name for cls in classes]
