"""What a report shows for each protocol: its evaluator's profile (benchmark/evaluation.py), found through the
evaluation kind the protocol declares, so a plugin protocol gets the tables of its kind.

Sampled ranking (``loo``) rows are events (one held-out positive ranked among sampled candidates; subsets are cold
and warm *targets*); full ranking (``cold``) rows are users (subsets are *candidate sets*); pointwise (``warmup``)
rows are new items (per-item AUC over their labelled evaluation rows; subsets are warm-up *stages*).
"""

from __future__ import annotations

from benchmark.evaluation import EVALUATORS, Profile, evaluator_for

ALL_SUBSETS = tuple(dict.fromkeys(s for e in EVALUATORS.values() for s in e.profile.subsets))


def profile(protocol: str) -> Profile:
    return evaluator_for(protocol).profile


__all__ = ["ALL_SUBSETS", "Profile", "profile"]
