"""One entry-point registry for everything a plugin can add: methods, protocols, datasets and suites.

Each kind is an entry-point group (``promo_bench.methods``, ``.protocols``, ``.datasets``, ``.suites``); promo-bench's
own entries use the same groups, so the plugin path runs on every run. Names come from package metadata; an entry is
imported on first use and checked against its kind's interface; one that fails to import or to pass the check is
reported as unavailable, naming its distribution, and never breaks the others. A name registered twice is an error
naming both sources. ``PROMO_BENCH_DISABLE_PLUGIN_AUTOLOAD=1`` keeps third-party entries out (promo-bench's stay).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

from benchmark.errors import BenchError

OWN_DIST = "promo-bench"
AUTOLOAD_OFF = "PROMO_BENCH_DISABLE_PLUGIN_AUTOLOAD"


def autoload() -> bool:
    """False when ``PROMO_BENCH_DISABLE_PLUGIN_AUTOLOAD`` is set to 1, true or yes."""
    return os.environ.get(AUTOLOAD_OFF, "").strip().lower() not in ("1", "true", "yes")


def origin_of(ep: metadata.EntryPoint) -> str:
    """The entry's distribution and version ("promo-bench 0.1.0"), or "unknown" when metadata has none."""
    dist = getattr(ep, "dist", None)
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else "unknown"


@dataclass
class Entry:
    """One registered name: where it points, who registered it, and (once loaded) the checked object."""

    kind: str  # "method", "protocol", "dataset", "suite"
    name: str
    target: str  # "module:attribute" or "module"
    origin: str  # "dist version", "local NAME.py sha256:HASH" or "unknown"
    builtin: bool
    check: Callable[[Any, str], Any] = field(repr=False, default=lambda obj, name: obj)
    _obj: Any = field(default=None, repr=False)
    error: str | None = None

    @property
    def loaded(self) -> bool:
        """Imported already (listing imports nothing, so a plain ``list`` says "not loaded" for the others)."""
        return self._obj is not None

    def load(self) -> Any:
        """The checked object; an import error or a failed check makes the entry unavailable (a BenchError)."""
        if self._obj is None and self.error is None:
            try:
                module, _, attr = self.target.partition(":")
                obj: Any = __import__(module, fromlist=[attr] if attr else ["__name__"])
                for part in attr.split(".") if attr else []:
                    obj = getattr(obj, part)
                self._obj = self.check(obj, self.name)
            except Exception as exc:  # a broken plugin must not break the run
                self.error = f"{type(exc).__name__}: {exc}"
        if self._obj is None:
            raise BenchError(f"{self.kind} {self.name!r} ({self.origin}, {self.target}) is unavailable: {self.error}")
        return self._obj


def discover(group: str, kind: str, check: Callable[[Any, str], Any],
             reserved: dict[str, str] | None = None) -> dict[str, Entry]:
    """Every entry of ``group`` (third-party ones only while autoload is on). ``reserved``: names already taken
    (name -> who holds them), e.g. built-in protocols or dataset cards in the cards folder."""
    reserved = reserved or {}
    on = autoload()
    entries: dict[str, Entry] = {}
    refused: set[str] = set()  # names two third-party plugins both claim: neither is used
    for ep in metadata.entry_points(group=group):
        origin = origin_of(ep)
        builtin = origin.split(" ")[0] == OWN_DIST
        if not builtin and not on:
            continue
        # a plugin that reuses a taken name is refused alone (with the fix), so it never blocks list, validate
        # or run for everything else
        if ep.name in reserved and not builtin:
            _refuse(kind, ep, origin, f"the name is taken by {reserved[ep.name]}")
            continue
        other = entries.get(ep.name)
        if other is not None and other.target != ep.value:
            if other.builtin and builtin:
                raise BenchError(f"{kind} name {ep.name!r} is registered twice in promo-bench itself: "
                                 f"{other.target} and {ep.value}")
            if builtin:  # the built-in wins, whichever entry point came first
                _refuse(kind, metadata.EntryPoint(ep.name, other.target, group), other.origin,
                        f"the name is taken by {origin}")
            elif other.builtin:
                _refuse(kind, ep, origin, f"the name is taken by {other.origin}")
                continue
            else:
                _refuse(kind, ep, origin, f"{other.origin} ({other.target}) registers it too")
                _refuse(kind, metadata.EntryPoint(ep.name, other.target, group), other.origin,
                        f"{origin} ({ep.value}) registers it too")
                refused.add(ep.name)
                continue
        if ep.name in refused:
            continue
        entries[ep.name] = Entry(kind, ep.name, ep.value, origin, builtin, check)
    for name in refused:
        entries.pop(name, None)
    return entries


_WARNED: set[tuple[str, str, str]] = set()


def _refuse(kind: str, ep: metadata.EntryPoint, origin: str, why: str) -> None:
    """Say once per process which plugin entry is left out, why, and how to fix it."""
    key = (kind, ep.name, ep.value)
    if key not in _WARNED:
        _WARNED.add(key)
        print(f"warning: ignoring {kind} {ep.name!r} from {origin} ({ep.value}): {why}; give it another name in "
              f"that plugin's entry points", file=sys.stderr)
