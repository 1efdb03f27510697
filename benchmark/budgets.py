"""Budgets: the schedule a trial trains under and, optionally, one size for every method (issue 19 part 2).

A budget is ``SCHEDULE`` or ``SCHEDULE-dD``. The schedule (``quick`` or ``paper``) selects each method's own
per-budget overrides (``Method.budgets``); ``-dD`` is the capacity-matched regime: every method's size option (the
first of ``SIZE_OPTIONS``, ``dim``, ``hidden`` or ``rank``, holding a number) is set to ``D``. Because a backbone is
resolved under the trial's budget too (``TrialEnvironment.fitted``), a matched PROMO sits on a matched SASRec and a
matched DropoutNet regresses a matched BPR-MF. The budget is part of every trial id and fitted-cache key, so matched
and unmatched numbers never mix. Hidden-layer widths (DropoutNet's and Heater's ``layers``) are not sizes of the
representation and stay as their papers set them; the suite's table note says so.
"""

from __future__ import annotations

import re
from typing import Any

from benchmark.errors import BenchError

SCHEDULES = ("quick", "paper")
_FORM = re.compile(r"^(?P<schedule>[a-z]+)(?:-d(?P<dim>[1-9][0-9]*))?$")
MAX_DIM = 4096
SIZE_OPTIONS = ("dim", "hidden", "rank")  # the first one a method has names its size


def parse(budget: str) -> tuple[str, int | None]:
    """(schedule, matched size or None); a clear error naming the expected form otherwise."""
    m = _FORM.match(budget)
    if not m or m["schedule"] not in SCHEDULES or (m["dim"] and int(m["dim"]) > MAX_DIM):
        raise BenchError(f"--budget {budget!r}: expected one of {', '.join(SCHEDULES)}, optionally with -dD for one "
                         f"size D (1..{MAX_DIM}) for every method, e.g. paper-d32")
    return m["schedule"], int(m["dim"]) if m["dim"] else None


def schedule(budget: str) -> str:
    return parse(budget)[0]


def size_option(defaults: dict[str, Any]) -> str | None:
    """The option that names a method's size: the first of SIZE_OPTIONS holding a number (Heater's ``hidden`` is a
    list of layer widths, its size is ``rank``), or None for methods without one (popular, a backbone reader)."""
    return next((k for k in SIZE_OPTIONS if type(defaults.get(k)) is int), None)


def overrides(cls: Any, budget: str) -> dict[str, Any]:
    """What ``budget`` changes in ``cls.defaults``: the schedule's own overrides, then the matched size."""
    sched, dim = parse(budget)
    out = dict(cls.budgets.get(sched, {}))
    key = size_option(cls.defaults)
    if dim is not None and key is not None:
        out[key] = dim
    return out
