"""One evaluator per evaluation kind: sampled ranking (``loo``), full ranking (``cold``), pointwise (``warmup``).

A protocol names its kind (``EVALUATION``); the evaluator owns everything that follows from it: the validation
signal a method's fit sees, the evaluation of each held-out part with the per-row vectors it stores (their schema),
how a report picks a subset of those vectors, and the report profile (default metrics, what a row is, its subsets).
``trial.py`` and the reports reach them only through ``EVALUATORS[kind]``, so a plugin protocol of any kind gets its
validation, its records and its tables with no lookup by protocol name. This module is part of the harness hash
(benchmark/identity.py): a change here changes every trial id.
"""

from __future__ import annotations

import abc
import copy
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from benchmark import fullrank, warmup_loop
from benchmark import metrics as M
from benchmark.errors import BenchError
from benchmark.method import Method
from benchmark.protocols.warmup import STAGES

if TYPE_CHECKING:
    from benchmark.trial import TrialEnvironment


@dataclass(frozen=True)
class Profile:
    """What a report shows for an evaluation kind."""

    metrics: tuple[str, ...]  # default table columns
    ci_metrics: tuple[str, ...]  # the confidence-interval plot
    headline: str  # the cold-vs-warm plot
    over_k: bool  # any K is derivable (stored ranks), so HR/NDCG over K can be drawn
    unit: str  # what one row of per-event vectors is
    subset_noun: str  # "cold targets" vs "cold candidates"
    stored: tuple[str, ...] | None = None  # the only metrics available (K fixed at run time); None: any K
    subsets: tuple[str, ...] = ("all", "cold", "warm")  # one table per subset
    ranking: bool = True  # cold-vs-warm and score-distribution plots apply
    pair: tuple[str, str] = ("cold", "warm")  # the cold-vs-warm plot's subsets
    rankings: tuple[str, ...] = ("sampled",)  # evaluations stored per part: "sampled" (the part) and "full"

    def available(self, requested: list[str]) -> list[str]:
        """The requested metrics this kind stores; any K of hr@K, recall@K, ndcg@K and mrr where K is free
        (sampled ranking: one positive per event, so recall@K is hr@K)."""
        if self.stored is None:
            return [m for m in requested if m == "mrr" or m.partition("@")[0] in ("hr", "recall", "ndcg")]
        return [m for m in requested if m in self.stored]


class Evaluator(abc.ABC):
    kind: ClassVar[str]
    profile: ClassVar[Profile]

    @abc.abstractmethod
    def validate(self, env: "TrialEnvironment", method: Method, seed: int, audit: bool, metric: str) -> float:
        """The protocol's validation metric of ``method`` as it is now, over all validation rows."""

    @abc.abstractmethod
    def evaluate(self, env: "TrialEnvironment", method: Method, part: str, seed: int, audit: bool,
                 save_scores: bool, vectors: dict[str, np.ndarray]) -> dict[str, Any]:
        """Evaluate one part (valid or test): add its per-row vectors to ``vectors``, return the record's summaries
        by evaluation (``{part: ...}``, and ``{part}.full`` where the part is also ranked over the catalogue)."""

    @abc.abstractmethod
    def subset_mask(self, v: dict[str, np.ndarray], split: str, subset: str) -> np.ndarray:
        """Which stored rows of ``split`` belong to ``subset`` (a report's table)."""


def part_of(split: str) -> str:
    """The held-out part of a report's split: ``test.full`` (full-catalogue ranking) is the ``test`` part's events."""
    return split.split(".", 1)[0]


FULL = "full"  # the suffix of a part's full-catalogue ranking in records and vectors: ``test.full``
# Two counts say how cold a target is, so no subset is a bare "cold": *-model counts the item's positives in the
# training rows the model was fit on (what it has seen of the item), *-event its training positives before the event
SAMPLED_SUBSETS = ("all", "cold-model", "warm-model", "cold-event", "warm-event")


class SampledRanking(Evaluator):
    """One row per event: the positive ranked among frozen sampled candidates, and again over the whole catalogue
    (benchmark/catalogue.py) where the split gives each part's context; (s, e) stored, so any K later."""

    kind = "sampled"
    profile = Profile(("hr@5", "hr@10", "ndcg@5", "ndcg@10"), ("hr@10", "ndcg@10"), "hr@10", True, "events", "targets",
                      subsets=SAMPLED_SUBSETS, pair=("cold-model", "warm-model"), rankings=("sampled", FULL))

    def validate(self, env, method, seed, audit, metric):
        from benchmark.trial import rank_events

        s, e, _ = rank_events(method, env.views.events("valid", audit))
        return float(M.metric_from_counts(metric, s, e).mean()) if len(s) else 0.0

    def evaluate(self, env, method, part, seed, audit, save_scores, vectors):
        from benchmark.trial import rank_events

        events = env.views.events(part, audit)
        s, e, scores = rank_events(method, events, keep_scores=save_scores and part == "test")
        per_event = M.all_metrics(s, e)
        if scores is not None:  # for the score-distribution plot; candidates' cold flags
            vectors.update({f"{part}.scores": scores.astype(np.float32), f"{part}.cand_cold": events.numpy("cand_cold"),
                            f"{part}.cand_mask": events.numpy("cand_mask")})
        flags = {"cold_model": events.numpy("cold_model").astype(bool), "cold_event": events.numpy("cold").astype(bool),
                 "n_train_pos": events.numpy("n_train_pos"), "n_prior_pos": events.numpy("n_prior_pos")}
        vectors.update({f"{part}.s": s, f"{part}.e": e, f"{part}.n_cand": events.numpy("cand_mask").sum(1),
                        f"{part}.user": events.numpy("user"), f"{part}.item": events.numpy("item")})
        vectors.update({f"{part}.{k}": v for k, v in flags.items()})
        vectors.update({f"{part}.{m}": v for m, v in per_event.items()})
        masks = {sub: self.subset_mask(vectors, part, sub) for sub in SAMPLED_SUBSETS}
        out = {part: M.summarise(per_event, masks)}
        if f"context/{part}" in env.split.arrays and not audit:  # the released code's leaky windows: sampled only
            with env.clock.measure("full_rank_s"):
                s, e, n_cand = rank_catalogue(env, method, part)
            full = M.all_metrics(s, e)
            vectors.update({f"{part}.{FULL}.s": s, f"{part}.{FULL}.e": e, f"{part}.{FULL}.n_cand": n_cand})
            out[f"{part}.{FULL}"] = M.summarise(full, masks)
        return out

    def subset_mask(self, v, split, subset):
        part = part_of(split)
        # records before issue 36 stored the at-event flag as ".cold" and the whole-training-period one as ".tail"
        model = v.get(f"{part}.cold_model", v.get(f"{part}.tail"))
        event = v.get(f"{part}.cold_event", v.get(f"{part}.cold"))
        if event is None:
            raise BenchError(f"stored vectors have no cold flags for {part}")
        event = np.asarray(event, dtype=bool)
        masks = {"all": np.ones_like(event), "cold-event": event, "warm-event": ~event}
        if model is not None:
            model = np.asarray(model, dtype=bool)
            masks.update({"cold-model": model, "warm-model": ~model})
        if subset not in masks:
            hint = " (say cold-model or cold-event: a target's count in the training rows, or before the event)"
            raise BenchError(f"--subset {subset!r}: expected {', '.join(masks)}"
                             + (hint if subset in ("cold", "warm", "tail") else "")
                             + ("; these records predate the training-row count" if subset.endswith("-model") else ""))
        return masks[subset]


def rank_catalogue(env: "TrialEnvironment", method: Method, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s, e, n_cand) of each event of ``part`` ranked over the catalogue; the same fitted ``method``, score calls
    of the sampled ranking's size (events x candidates)."""
    from benchmark.tensors import TensorTable
    from benchmark.trial import EVAL_BATCH, rank_events

    cat = env.catalogue(part)
    batch = max(1, EVAL_BATCH * (int(env.split.meta["params"]["n_negatives"]) + 1) // max(1, cat.n_items))
    s_all, e_all, n_all = [], [], []
    for block in cat.blocks():
        s, e, _ = rank_events(method, TensorTable(block, env.device), batch_size=batch)
        s_all.append(s)
        e_all.append(e)
        n_all.append(block["cand_mask"].sum(1))
    if not s_all:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(s_all), np.concatenate(e_all), np.concatenate(n_all)


SUBSET_CODES = {name: code for code, name in enumerate(fullrank.SUBSETS)}  # full ranking: one row per (user, set)


class FullRanking(Evaluator):
    """One row per (user, candidate set) under full ranking; the metric vectors are stored (K fixed at run time)."""

    kind = "full"
    profile = Profile(("recall@10", "recall@20", "ndcg@10", "ndcg@20"), ("recall@20", "ndcg@20"), "ndcg@20", False,
                      "users", "candidates", fullrank.METRICS)

    def validate(self, env, method, seed, audit, metric):
        rows = fullrank.evaluate(method, env.fullrank_part("valid"), subsets=("all",))
        return float(rows[metric].mean()) if len(rows[metric]) else 0.0

    def evaluate(self, env, method, part, seed, audit, save_scores, vectors):
        rows = fullrank.evaluate(method, env.fullrank_part(part))
        vectors.update({f"{part}.user": rows["user"], f"{part}.item": np.full(len(rows["user"]), -1, dtype=np.int64),
                        f"{part}.subset": rows["subset"], f"{part}.n_rel": rows["n_rel"]})
        vectors.update({f"{part}.{m}": rows[m] for m in fullrank.METRICS})
        return {part: fullrank.summarise(rows)}

    def subset_mask(self, v, split, subset):
        if subset not in SUBSET_CODES:
            raise BenchError(f"--subset {subset!r}: expected {', '.join(SUBSET_CODES)}")
        return v[f"{split}.subset"] == SUBSET_CODES[subset]


class Pointwise(Evaluator):
    """One row per (new item, warm-up stage): AUC over its labelled rows; the warm-up runs on a copy of the method."""

    kind = "pointwise"
    profile = Profile(("auc",), ("auc",), "auc", False, "items", "stage", ("auc", "logloss"), STAGES, False)

    def __init__(self) -> None:
        # method -> (key, lr, search, validation run at lr)
        self._chosen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def validate(self, env, method, seed, audit, metric):
        # validation new items at the base stage (no warm-up inside a fit)
        summary, _ = warmup_loop.evaluate(method, env.views.events("valid"), env.views.events("warm_valid"),
                                     env.split.meta["params"], seed, stages=STAGES[:1])
        return float(summary[STAGES[0]][metric] or 0.0)

    def evaluate(self, env, method, part, seed, audit, save_scores, vectors):
        params = env.split.meta["params"]
        # chosen on the validation items, never on test rows; once per fitted method and seed (valid comes first)
        key = (env.split.hash, seed)
        if self._chosen.get(method, (None,))[0] != key:
            self._chosen[method] = (key, *warmup_loop.choose_lr(method, env.views.events("valid"),
                                                                env.views.events("warm_valid"), params, seed))
        _, lr, search, valid_run = self._chosen[method]
        if part == "valid" and valid_run is not None:  # the search already warmed the validation items up at lr
            summary, vec = copy.deepcopy(valid_run)
        else:
            summary, vec = warmup_loop.evaluate(method, env.views.events(part), env.views.events(f"warm_{part}"),
                                                {**params, "warm_lr": lr}, seed)
        for stage in STAGES[1:]:
            if search and "warm_up" in summary[stage]:
                summary[stage]["warm_up"]["lr_search"] = search  # valid pooled AUC, mean over warm-up stages
        vectors.update({f"{part}.item": vec["item"], f"{part}.user": np.full(len(vec["item"]), -1, dtype=np.int64),
                        f"{part}.stage": vec["stage"], f"{part}.auc": vec["auc"], f"{part}.logloss": vec["logloss"]})
        return {part: summary}

    def subset_mask(self, v, split, subset):
        if subset not in STAGES:
            raise BenchError(f"--subset {subset!r}: warmup tables are per stage: {', '.join(STAGES)}")
        return v[f"{split}.stage"] == STAGES.index(subset)


EVALUATORS: dict[str, Evaluator] = {e.kind: e for e in (SampledRanking(), FullRanking(), Pointwise())}


def evaluator_for(protocol: str) -> Evaluator:
    """The evaluator of a registered protocol (built-in or plugin), by the kind the protocol declares."""
    from benchmark.protocols import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise BenchError(f"protocol {protocol!r} of a stored result is not registered here; install the plugin that "
                         f"provides it to report on it")
    return EVALUATORS[PROTOCOLS[protocol].EVALUATION]

