"""Expected trial cost, for the plan's time estimate, the progress bar's ETA and the order of parallel work.

A trial's own cost (its fit and evaluation, backbones excluded) comes from, in order: the median of earlier ok
records of the same (method, protocol, dataset, budget) on the same kind of machine (CPU model, core count,
device type) in this results folder (``training_costs``: where a method was fitted as another trial's backbone, that
trial's timing of it; its own trial, served from the cache, then only evaluated); else the reference table ``costs_reference.json`` (measured by
``perf/cost_table.py`` from a ``run --all`` on the machine it names), scaled by the dataset's size relative to
ML-100K; else a flat guess. A backbone (``Method.uses``) that is not fitted on disk yet is charged once, to
the first trial that needs it. Estimates steer nothing that can change a number.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from benchmark.budgets import schedule
from benchmark.env import cpu_model

REFERENCE = Path(__file__).resolve().parent / "costs_reference.json"
UNKNOWN_S = 30.0  # a method measured nowhere
QUICK_SHARE = 0.1  # the quick budget against the paper one, where only the paper cost is known
REFERENCE_ROWS = 100_000  # ML-100K, the reference table's dataset


def regime(protocol: str, params: dict[str, Any] | None) -> str:
    """``loo`` at its protocol's defaults, else ``loo[train_negatives=1]``: a regime that changes the training rows
    (the sampled paper suite trains the sequential family 5-10x longer) is costed from its own records only."""
    changed = changed_params(protocol, params)
    return f"{protocol}[{','.join(changed)}]" if changed else protocol


def changed_params(protocol: str, params: dict[str, Any] | None) -> list[str]:
    """The protocol parameters off their defaults, as ``KEY=VALUE`` (what ``--protocol-set`` would say)."""
    from benchmark.protocols import PROTOCOLS

    defaults = getattr(PROTOCOLS.get(protocol), "DEFAULTS", {})
    return [f"{k}={v}" for k, v in sorted((params or {}).items()) if k in defaults and defaults[k] != v]


def machine_key(env: dict[str, Any]) -> tuple[Any, ...]:
    return (env.get("cpu"), env.get("cpu_count"), str(env.get("device", "cpu")).split(":")[0])


def this_machine(device: torch.device) -> tuple[Any, ...]:
    return (cpu_model(), os.cpu_count(), device.type)


@dataclass
class CostModel:
    measured: dict[tuple[str, str, str, str], list[float]] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)  # how many estimates came from where
    off_regime: set[str] = field(default_factory=set)  # regimes estimated from the reference's protocol defaults

    @classmethod
    def load(cls, records: Iterable[dict[str, Any]], device: torch.device) -> "CostModel":
        here = this_machine(device)
        measured = training_costs(r for r in records if machine_key(r.get("env", {})) == here)
        reference = json.loads(REFERENCE.read_text()) if REFERENCE.is_file() else {}
        return cls(measured, reference)

    def own(self, method: str, protocol: str, dataset: str, budget: str, n_rows: int,
            params: dict[str, Any] | None = None) -> float:
        """Expected seconds of one trial of ``method``, its backbones excluded, under ``protocol`` with ``params``
        (its regime: records of another regime do not count)."""
        where = regime(protocol, params)
        # a capacity-matched budget (paper-d32) has no records of its own at first: its schedule's are the estimate
        got = (self.measured.get((method, where, dataset, budget))
               or self.measured.get((method, where, dataset, schedule(budget))))
        if got:
            self.sources["earlier records here"] = self.sources.get("earlier records here", 0) + 1
            return statistics.median(got)
        ref = self.reference.get("costs", {}).get(f"{method}/{protocol}")
        if ref is not None:
            self.sources["reference table"] = self.sources.get("reference table", 0) + 1
            if where != protocol:
                self.off_regime.add(where)
            scale = max(n_rows, 1) / REFERENCE_ROWS
            return float(ref) * scale * (QUICK_SHARE if schedule(budget) == "quick" else 1.0)
        self.sources["a flat guess"] = self.sources.get("a flat guess", 0) + 1
        return UNKNOWN_S * (QUICK_SHARE if schedule(budget) == "quick" else 1.0)

    def describe(self) -> str:
        parts = [f"{n} from {src}" for src, n in sorted(self.sources.items())]
        where = self.reference.get("machine")
        if "reference table" in self.sources and where:
            parts.append(f"reference machine: {where}")
        if self.off_regime:  # an underestimate where the regime adds training rows: say so
            parts.append(f"the reference table is at protocol defaults, not {', '.join(sorted(self.off_regime))}")
        return "; ".join(parts)


def training_costs(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str, str], list[float]]:
    """Seconds to fit and evaluate each (method, protocol, dataset, budget), backbones excluded, from ok records.

    A backbone is usually fitted inside the first trial that needs it (cb2cf's record: sasrec, 101 s, trained), and
    its own trial then finds it in the cache and only evaluates (0.08 s). Its cost is the fitting one, so: records
    whose method came from the cache are left out, and every backbone a record says it *trained* counts, with its
    seconds plus its evaluation as a trial of its own (``EVAL_S``)."""
    out: dict[tuple[str, str, str, str], list[float]] = {}
    for r in records:
        try:
            if r.get("status") != "ok":
                continue
            t = r["timing"]
            where = (regime(r["protocol"]["name"], r["protocol"].get("params")), r["dataset"]["name"],
                     r["method"]["budget"])
            if t.get("cache") not in ("memory", "disk"):  # it trained here
                out.setdefault((r["method"]["name"], *where), []).append(
                    float(t.get("total_s", 0.0)) - float(t.get("backbone_s", 0.0)))
            for b in t.get("backbones", []):
                if b.get("cache") == "trained":
                    out.setdefault((b["name"], *where), []).append(float(b["s"]) + EVAL_S)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


EVAL_S = 1.0  # a trial's evaluation once its model is fitted (what a served backbone's own trial costs)


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
