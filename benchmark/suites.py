"""Suites: named line-ups of methods that ``run --suite`` runs and ``report --suite`` lays out as one paper's table.

A suite is data, not code: which methods (in the table's row order, the reference last), their display names,
the protocols, seeds and budget to run, and the table's metrics and subsets. Suites register through the
``promo_bench.suites`` entry-point group exactly as methods do, so a plugin adds one with a line in its own
pyproject.toml (``mysuite = "mypkg.suites:MY_SUITE"``) and no change to the harness.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping

from benchmark import plugins
from benchmark.errors import BenchError

GROUP = "promo_bench.suites"


@dataclass(frozen=True)
class Suite:
    name: str
    title: str  # one line, shown by ``promo-bench list suites`` and in the table's caption
    methods: tuple[str, ...]  # table row order; the reference is one of them
    reference: str | None = None  # the method the others are tested against
    labels: Mapping[str, str] = field(default_factory=dict)  # display names (the paper's row names)
    protocols: tuple[str, ...] = ("loo",)
    seeds: int = 5
    budget: str = "paper"
    metrics: tuple[str, ...] = ("hr@5", "hr@10", "ndcg@5", "ndcg@10")
    # one table each; on a sampled protocol "cold-model" counts the target's training positives, "cold-event" its
    # training positives before the event (docs/protocols.md)
    subsets: tuple[str, ...] = ("all", "cold-model", "cold-event")
    notes: tuple[str, ...] = ()  # what a reader must know about the rows, printed with every table of the suite
    # reference points shown below a rule, never ranked or tested (a paper table that omits popular hides whether
    # its rows beat it)
    below_rule: tuple[str, ...] = ()
    # the regime: protocol parameters (--protocol-set) the suite's trials run under and its tables select
    protocol_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def all_methods(self) -> tuple[str, ...]:
        return self.methods + tuple(m for m in self.below_rule if m not in self.methods)

    def label(self, method: str) -> str:
        return self.labels.get(method, method)


# PROMO (RecSys 2024), Table 2: its 12 baselines in the paper's order (promo-spec section 8), then PROMO itself.
_TABLE2 = ("dssm-sasrec", "finetune", "cdn", "dcn", "deepfm", "sasrec", "dssm", "dropoutnet", "cb2cf", "metaemb",
           "ppr", "plate", "promo")
_LABELS = {"dssm-sasrec": "Pre-train", "finetune": "Fine-tune", "cdn": "CDN", "dcn": "DCN", "deepfm": "DeepFM",
           "sasrec": "SASRec", "dssm": "DSSM", "dropoutnet": "DropoutNet", "cb2cf": "CB2CF", "metaemb": "MetaEmb",
           "ppr": "PPR", "plate": "PLATE", "promo": "PROMO", "random": "Random", "popular": "Popular"}
_NOTES = ("MetaEmb replaces the embedding of items with no training row only; on loo nearly every candidate has one, "
          "so its row is its DeepFM backbone's up to those few items (docs/methods/metaemb.md)",
          "DropoutNet regresses its BPR-MF backbone's scores, which sample their own negatives in either regime",)



MATCHED_DIM = 32  # between the PROMO and CTR families' 16 and the BPR family's and CLCRec's 64: nobody's own choice
_MATCHED_NOTES = (f"Capacity-matched: every method's size option (dim, hidden or rank; docs/methods/) and its "
                  f"backbones' is {MATCHED_DIM}; hidden-layer widths (DropoutNet's and Heater's 200) stay",)


def _table2(name: str, regime: str, train_negatives: int, budget: str = "paper", notes: tuple[str, ...] = (),
            protocol: str = "loo") -> Suite:
    """PROMO's Table 2 line-up under one training regime (issue 19): the signal is the same for every row."""
    where = {"loo": "leave-one-out", "temporal": "a global time split"}[protocol]
    return Suite(name=name, title=f"PROMO's Table 2 line-up (Jiang et al., RecSys 2024) on {where} with 100 "
                                  f"sampled negatives, trained {regime}, for every method",
                 methods=_TABLE2, reference="promo", labels=_LABELS, notes=_NOTES + notes, budget=budget,
                 below_rule=("random", "popular"), protocols=(protocol,),
                 subsets=("all", "cold-model") if protocol == "temporal" else ("all", "cold-model", "cold-event"),
                 protocol_options={protocol: {"train_negatives": train_negatives}})


_SAMPLED = "on the labels plus one sampled unrated item per positive"
PAPER = _table2("paper", "as released (explicit labels only)", 0)
PAPER_SAMPLED = _table2("paper-sampled", _SAMPLED, 1)
# the same line-up and regime on one timeline: a target cold for the model is cold at every event (issue 36)
PAPER_TEMPORAL = _table2("paper-temporal", _SAMPLED, 1, protocol="temporal")
PAPER_MATCHED = _table2("paper-matched", f"{_SAMPLED} at one size ({MATCHED_DIM})", 1, f"paper-d{MATCHED_DIM}",
                        _MATCHED_NOTES)


def check_suite(obj: Any, name: str) -> Suite:
    if callable(obj) and not isinstance(obj, Suite):
        obj = obj()
    if not isinstance(obj, Suite):
        raise TypeError(f"{obj!r} is not a benchmark.suites.Suite")
    if obj.name != name:
        raise TypeError(f"suite declares name {obj.name!r} but is registered as {name!r}")
    if not obj.methods:
        raise TypeError("a suite needs at least one method")
    if obj.reference is not None and obj.reference not in obj.methods:
        raise TypeError(f"reference {obj.reference!r} is not one of the suite's methods")
    if len(set(obj.methods)) != len(obj.methods):
        raise TypeError("a suite lists each method once")
    unknown = set(obj.protocol_options) - set(obj.protocols)
    if unknown:
        raise TypeError(f"protocol_options for {', '.join(sorted(unknown))}, which the suite does not run")
    return obj


def suites() -> tuple[dict[str, Suite], dict[str, str]]:
    """Every registered suite (benchmark/plugins.py), and why each one that fails to load is unavailable (a broken
    plugin suite never hides the others)."""
    out: dict[str, Suite] = {}
    broken: dict[str, str] = {}
    for name, entry in plugins.discover(GROUP, "suite", check_suite).items():
        try:
            out[name] = entry.load()
        except BenchError:
            broken[name] = f"{entry.origin}, {entry.target}: {entry.error}"
    return out, broken


def get_suite(name: str) -> Suite:
    known, broken = suites()
    if name in broken:
        raise BenchError(f"suite {name!r} is unavailable ({broken[name]})")
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BenchError(f"unknown suite {name!r}{hint}; known suites: {', '.join(sorted(known)) or 'none'}")
    return known[name]
