"""What a report shows for each protocol: its metrics, what a row of results is, and what its subsets are.

``loo`` rows are events (one held-out positive ranked among sampled candidates; subsets are cold and
warm *targets*); ``cold`` rows are users under full ranking (subsets are *candidate sets*); ``warmup`` rows
are new items (per-item AUC over their labelled evaluation rows; subsets are warm-up *stages*).
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.fullrank import METRICS as FULL_RANKING_METRICS
from benchmark.protocols.warmup import STAGES


@dataclass(frozen=True)
class Profile:
    metrics: tuple[str, ...]  # default table columns
    ci_metrics: tuple[str, ...]  # the confidence-interval plot
    headline: str  # the cold-vs-warm plot
    over_k: bool  # any K is derivable (stored ranks), so HR/NDCG over K can be drawn
    unit: str  # what one row of per-event vectors is
    subset_noun: str  # "cold targets" vs "cold candidates"
    stored: tuple[str, ...] | None = None  # the only metrics available (K fixed at run time); None: any K
    subsets: tuple[str, ...] = ("all", "cold", "warm")  # one table per subset
    ranking: bool = True  # cold-vs-warm and score-distribution plots apply

    def available(self, requested: list[str]) -> list[str]:
        return [m for m in requested if self.stored is None or m in self.stored]


PROFILES = {
    "loo": Profile(("hr@5", "hr@10", "ndcg@5", "ndcg@10"), ("hr@10", "ndcg@10"), "hr@10", True, "events", "targets"),
    "cold": Profile(("recall@10", "recall@20", "ndcg@10", "ndcg@20"), ("recall@20", "ndcg@20"), "ndcg@20", False,
                    "users", "candidates", FULL_RANKING_METRICS),
    "warmup": Profile(("auc",), ("auc",), "auc", False, "items", "stage", ("auc", "logloss"), STAGES, False),
}
ALL_SUBSETS = tuple(dict.fromkeys(s for p in PROFILES.values() for s in p.subsets))


def profile(protocol: str) -> Profile:
    return PROFILES.get(protocol, PROFILES["loo"])
