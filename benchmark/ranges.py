"""The ranges a method's numeric options (and a protocol's parameters) must lie in, checked when a run is
planned, before any trial starts.

A method declares its own in ``Method.option_ranges`` (``{"lr": Range(0, None, low_open=True)}``); an option it
does not declare gets the rule its name implies across this code base (``lr``/``*_lr`` positive, ``epochs`` at
least 1, a dropout in [0, 1), ...). Every float must be finite. So ``--set dssm.lr=nan`` or ``epochs=0`` is a
one-line error that names the option and the range, never an untrained model stored as ``ok``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{lo}, {hi}{')' if self.high_open or self.high is None else ']'}"


POSITIVE = Range(0, None, low_open=True)
AT_LEAST_1 = Range(1)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1, high_open=True)

# (name pattern, range): the first match wins; a method's own option_ranges come before all of these
BY_NAME: tuple[tuple[str, Range], ...] = (
    (r"(.*_)?lr", POSITIVE),
    (r"temperature|lr_decay", POSITIVE),
    (r"(.*_)?(dropout|drop)|momentum", FRACTION),
    (r"(.*_)?epochs|(.*_)?batch(_size)?|minibatch|dim|heads|blocks|rank|(.*_)?len|k|iters|n_.*|tau"
     r"|items_per_batch|max_data_per_step|decay_every", AT_LEAST_1),
    (r"(.*_)?patience|cross_layers|(.*_)?seed|min_.*", NON_NEGATIVE),
    (r"(.*_)?share", FRACTION),
    (r"weight_decay|l2(_emb)?|reg|lambda\d*|mse_weight", NON_NEGATIVE),
)


# text options whose values the name fixes across methods (the CTR family's pooling of multi-hot fields)
CHOICES_BY_NAME: dict[str, tuple[str, ...]] = {"multi_hot": ("mean", "sum")}


def range_for(name: str, declared: Mapping[str, Range] | None = None) -> Range | None:
    if declared and isinstance(declared.get(name), Range):
        return declared[name]
    for pattern, rng in BY_NAME:
        if re.fullmatch(pattern, name):
            return rng
    return None


def option_problem(name: str, value: Any, declared: Mapping[str, Range] | None = None) -> str | None:
    """Why ``value`` is not allowed for option ``name``, or None. A declared tuple of strings is the option's
    choices."""
    if isinstance(value, str):
        choices = (declared or {}).get(name, CHOICES_BY_NAME.get(name))
        if isinstance(choices, tuple) and value not in choices:
            return f"expected one of {', '.join(choices)}, got {value!r}"
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {value}"
    rng = range_for(name, declared)
    if rng is not None and not rng.holds(value):
        return f"expected a value in {rng.text()}, got {value:g}"
    return None
