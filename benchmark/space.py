"""Search spaces as data: what ``promo-bench tune`` may vary for a method, declared next to its defaults.

A method's ``search_space`` maps option names to one of the parameter kinds below. Spaces are data so that a reader
sees every method's range in one place (its card prints them) and the tuner treats every method alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False
    when: tuple[str, Any] | None = None  # only searched when another option has this value


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False
    when: tuple[str, Any] | None = None


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]
    when: tuple[str, Any] | None = None


Param = Union[Float, Int, Choice]


def check_space(method: str, space: Mapping[str, Param], defaults: Mapping[str, Any]) -> None:
    """Every searched option exists, has the default's type, and holds its default inside its range: a space that
    cannot reach the default cannot tell whether tuning helped."""
    for name, p in space.items():
        if name not in defaults:
            raise TypeError(f"{method}: search_space names {name!r}, which is not one of its options")
        d = defaults[name]
        if isinstance(p, Choice):
            if d not in p.values:
                raise TypeError(f"{method}: search_space {name!r} choices {p.values} leave out the default {d!r}")
        elif not (p.low <= d <= p.high) or (p.log and p.low <= 0):
            raise TypeError(f"{method}: search_space {name!r} range [{p.low}, {p.high}] leaves out the default {d!r}")
        if p.when is not None and p.when[0] not in defaults:
            raise TypeError(f"{method}: search_space {name!r} is conditional on unknown option {p.when[0]!r}")


def suggest(trial: Any, space: Mapping[str, Param], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """One point of the space from an Optuna trial; conditional parameters follow the options chosen before them
    (or the defaults)."""
    chosen: dict[str, Any] = {}
    for name, p in space.items():
        if p.when is not None and chosen.get(p.when[0], defaults.get(p.when[0])) != p.when[1]:
            continue
        if isinstance(p, Float):
            chosen[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        elif isinstance(p, Int):
            chosen[name] = trial.suggest_int(name, p.low, p.high, log=p.log)
        else:
            chosen[name] = trial.suggest_categorical(name, list(p.values))
    return chosen


def describe(space: Mapping[str, Param]) -> str:
    """One line per option, for cards and ``promo-bench tune --show``."""
    out = []
    for name, p in space.items():
        if isinstance(p, Choice):
            text = f"{name} in {{{', '.join(map(str, p.values))}}}"
        else:
            text = f"{name} in [{p.low:g}, {p.high:g}]" + (" (log)" if p.log else "")
        out.append(text + (f" when {p.when[0]}={p.when[1]}" if p.when else ""))
    return "; ".join(out)
