"""One trial: (method + options, dataset, protocol + split, seed) -> a result record.

The trial id is the sha256 of canonical JSON of exactly those things plus the method version, the
content features' hash, the harness code's hash (benchmark/identity.py) and, for a method that is not
built in, its origin (a plugin's distribution and version, an included file's content hash), so rerunning
the same configuration finds its stored record and anything that can change a number never collides.
"""

from __future__ import annotations

import random
import resource
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from benchmark import fullrank
from benchmark import metrics as M
from benchmark.capacity import capacity
from benchmark.catalogue import Catalogue
from benchmark.config import sha256_json
from benchmark.data.interactions import Interactions
from benchmark.env import environment
from benchmark.evaluation import EVALUATORS
from benchmark.fitted import FittedCache
from benchmark.identity import harness_hash
from benchmark.method import Method, TrialContext
from benchmark.protocols import PROTOCOLS
from benchmark.protocols.split import PARTS, Split
from benchmark.registry import OWN_DIST
from benchmark.tensors import TensorTable
from benchmark.timing import TrialClock
from benchmark.views import SplitViews

EVAL_BATCH = 256


@dataclass(frozen=True)
class TrialSpec:
    method: str
    method_version: str
    origin: str
    options: dict[str, Any]
    variant: str
    budget: str
    dataset: str
    protocol: str
    split_hash: str
    seed: int
    changed: dict[str, Any] = field(default_factory=dict)
    features: str = ""  # the dataset's content-feature hash (Interactions.features_hash)
    tuning: dict[str, Any] = field(default_factory=dict)  # the study a tuned configuration came from (provenance;
    # the options it chose are in the identity)

    def identity(self) -> dict[str, Any]:
        # a built-in method's version is its identity; a plugin adds its distribution and version, an included
        # file its content hash (not its path: moving the file changes no number)
        code = "" if self.origin.split(" ")[0] == OWN_DIST else self.origin
        if code.startswith("local "):
            code = "local " + code.rsplit(" ", 1)[-1]
        return {"method": self.method, "config": {"options": self.options, "budget": self.budget},
                "method_version": self.method_version, "dataset": self.dataset, "protocol": self.protocol,
                "split_hash": self.split_hash, "seed": self.seed, "features": self.features,
                "harness": harness_hash(), "code": code}

    @property
    def trial_id(self) -> str:
        return sha256_json(self.identity())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# What a method's score() may see of an evaluation event. The positive item, its cold flag and the
# event's place in the log stay with the harness.
SCORING_FIELDS = ("user", "time", "cand", "cand_mask", "hist", "hist_mask", "fb_pos", "fb_pos_mask", "fb_neg",
                  "fb_neg_mask")
PER_CANDIDATE = ("cand", "cand_mask", "fb_pos", "fb_pos_mask", "fb_neg", "fb_neg_mask")
SHUFFLE_SEED = 0


def scoring_batch(events: TensorTable, idx: torch.Tensor, perm: torch.Tensor) -> dict[str, torch.Tensor]:
    """The events' fields a method may use, with each event's candidates in a fixed shuffled order, so the
    positive is not always in column 0 (a position-dependent score would otherwise find it)."""
    batch = {name: events[name][idx] for name in SCORING_FIELDS if name in events}
    for name in PER_CANDIDATE:
        if name in batch:
            x = batch[name]
            index = perm.view(*perm.shape, *([1] * (x.dim() - 2))).expand_as(x)
            batch[name] = torch.gather(x, 1, index)
    return batch


@torch.no_grad()
def rank_events(method: Method, events: TensorTable, batch_size: int = EVAL_BATCH,
                keep_scores: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(s, e[, scores]) per event: candidates above and tied with the positive (column 0 of ``cand``).

    Methods score shuffled candidates (the same shuffle for every method and trial); scores are put back
    in the split's order before counting.
    """
    n_events, n_cand = events["cand"].shape
    gen = torch.Generator().manual_seed(SHUFFLE_SEED)
    perms = torch.argsort(torch.rand(n_events, n_cand, generator=gen), dim=1).to(events.device)
    s_all, e_all, sc_all = [], [], []
    for idx in events.index_batches(batch_size, shuffle=False):
        perm = perms[idx]
        batch = scoring_batch(events, idx, perm)
        shuffled = method.score(batch)
        if tuple(shuffled.shape) != tuple(batch["cand"].shape):
            raise ValueError(f"method {method.name!r} returned scores of shape {tuple(shuffled.shape)}, "
                             f"expected {tuple(batch['cand'].shape)}")
        scores = torch.empty_like(shuffled, dtype=torch.float32).scatter_(1, perm, shuffled.float())
        s, e = M.rank_counts(scores, events["cand_mask"][idx])
        s_all.append(s.cpu())
        e_all.append(e.cpu())
        if keep_scores:
            sc_all.append(scores.cpu())
    if not s_all:  # a part with no events (a tiny log whose every event the existence rule leaves out)
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, (np.zeros((0, n_cand), dtype=np.float32) if keep_scores else None)
    scores_out = torch.cat(sc_all).numpy() if keep_scores else None
    return torch.cat(s_all).numpy(), torch.cat(e_all).numpy(), scores_out


def _no_progress(it: Iterable[Any], desc: str) -> Iterator[Any]:
    return iter(it)


class TrialEnvironment:
    """What every trial and backbone of one (split, device) shares: device views and the fitted cache."""

    def __init__(self, split: Split, inter: Interactions, device: torch.device, cache: FittedCache | None = None,
                 progress: Callable[[Iterable[Any], str], Iterator[Any]] = _no_progress) -> None:
        self.split, self.inter, self.device = split, inter, device
        self.views = SplitViews(split, inter, device)
        self.cache = cache if cache is not None else FittedCache(None)
        self.clock = TrialClock((lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None))
        self.progress = progress
        self.protocol = PROTOCOLS[split.meta["protocol"]]
        self.evaluator = EVALUATORS[self.protocol.EVALUATION]  # the protocol's kind: sampled, full or pointwise
        self._fullrank: dict[str, fullrank.FullRankPart] = {}
        self._catalogue: dict[str, Catalogue] = {}

    def catalogue(self, part: str) -> Catalogue:
        """The full-catalogue candidate lists of a sampled protocol's part (built once per environment)."""
        if part not in self._catalogue:
            self._catalogue[part] = Catalogue(self.split, self.inter, part)
        return self._catalogue[part]

    def fullrank_part(self, part: str) -> fullrank.FullRankPart:
        if part not in self._fullrank:
            self._fullrank[part] = fullrank.FullRankPart.build(self.split, part, self.device)
        return self._fullrank[part]

    def context(self, seed: int, budget: str, audit: bool, owner: type[Method] | None = None) -> TrialContext:
        """The services of one trial of ``owner`` (the harness always names it: its ``uses`` bound what
        ``fitted`` may fetch); ``owner=None`` is for a caller that is no method (a test, a perf script)."""
        generator = torch.Generator().manual_seed(seed)

        def validate(m: Method) -> float:
            # over all events / all candidates / the validation items at the base stage
            with self.clock.measure("valid_s"):
                return self.evaluator.validate(self, m, seed, audit, self.protocol.VALID_METRIC)

        def fitted(name: str, overrides: dict[str, Any]) -> Method:
            from benchmark.registry import get_method

            if owner is not None and name not in owner.uses:
                raise ValueError(f"method {owner.name!r} asked ctx.fitted() for {name!r}, which its class attribute "
                                 f"`uses` {tuple(owner.uses)!r} does not name; list every backbone there (it joins "
                                 f"the trial id)")
            with self.clock.backbone(name) as note:
                inst, info = self.fitted(get_method(name), overrides, seed, budget)
                note["cache"] = str(info.get("cache", "trained")).split(":")[0]
            seed_everything(seed)
            generator.manual_seed(seed)
            return inst

        return TrialContext(device=self.device, seed=seed, budget=budget, generator=generator, validate=validate,
                            progress=self.progress, fitted=fitted, audit=audit, n_items=self.inter.n_items,
                            protocol=self.split.meta["protocol"])

    def fitted(self, cls: type[Method], overrides: dict[str, Any], seed: int, budget: str,
               ) -> tuple[Method, dict[str, Any]]:
        """A fitted ``cls`` with the budget's defaults plus ``overrides``; trained at most once."""
        options = cls.resolved_defaults(budget)
        unknown = set(overrides) - set(options)
        if unknown:
            raise ValueError(f"method {cls.name!r} has no option(s) {sorted(unknown)}")
        options.update(overrides)
        audit = bool(options.get("audit_leak", False))

        def make() -> tuple[Method, Any]:
            return cls(dict(options), self.context(seed, budget, audit, cls)), self.views.train(audit)

        def fit(inst: Method) -> dict[str, Any]:
            seed_everything(seed)
            inst.ctx.generator.manual_seed(seed)
            return inst.fit(self.views.train(audit))

        inst, info = self.cache.get_or_fit(cls, options, budget, self.split.hash, self.inter.dataset, seed,
                                           self.device, make, fit, features=self.inter.features_hash())
        inst.fitted_info = {k: v for k, v in info.items() if k not in ("train_loss", "loss_parts")}
        return inst, info


def _timing(clock: TrialClock, t0: float, t_fit: float, t_end: float, own_cache: str | None) -> dict[str, Any]:
    """The record's timing: ``fit_s`` is the method's own training (its validation passes included, counted
    again in ``valid_s``; backbones it fetched excluded, in ``backbone_s`` with their ``backbones`` origin),
    ``eval_s`` the evaluation after fitting (``valid_eval_s`` + ``test_eval_s``), ``total_s`` the trial's wall time."""
    sec = clock.seconds
    backbone = float(sec.get("backbone_s", 0.0))
    out: dict[str, Any] = {"fit_s": t_fit - t0 - backbone, "backbone_s": backbone, "valid_s": float(sec.get("valid_s", 0.0)),
                           "eval_s": t_end - t_fit, "total_s": t_end - t0, "backbones": clock.backbones,
                           "full_rank_s": float(sec.get("full_rank_s", 0.0)),  # of eval_s: the catalogue ranking
                           **{f"{part}_eval_s": float(sec.get(f"{part}_eval_s", 0.0)) for part in PARTS}}
    if own_cache is not None:  # a backbone's own trial served from the cache did no training here
        out["cache"] = own_cache
    return out


def run_trial(spec: TrialSpec, cls: type[Method], split: Split, inter: Interactions, device: torch.device,
              progress: Callable[[Iterable[Any], str], Iterator[Any]] = _no_progress,
              env: TrialEnvironment | None = None, save_scores: bool = False,
              ) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Run one trial; an exception inside the method becomes a 'failed' record, never a crash."""
    env = env if env is not None else TrialEnvironment(split, inter, device, progress=progress)
    audit = bool(spec.options.get("audit_leak", False))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record: dict[str, Any] = {
        "trial_id": spec.trial_id, "status": "running", "seed": spec.seed, "started": started, "audit": audit,
        "identity": spec.identity(),
        "method": {"name": spec.method, "version": spec.method_version, "origin": spec.origin,
                   "options": spec.options, "changed": spec.changed, "variant": spec.variant, "budget": spec.budget,
                   **({"tuning": spec.tuning} if spec.tuning else {})},
        "dataset": {"name": spec.dataset, "source": inter.source, "interactions_sha256": inter.canonical_hash(),
                    "features_sha256": inter.features_hash(), "variant": inter.variant,
                    "verification": inter.provenance.get("verification", {"status": "not checked"}),
                    "notes": inter.provenance.get("notes", [])},
        "protocol": {"name": spec.protocol, "evaluation": env.evaluator.kind, "params": split.meta["params"],
                     "split_hash": split.hash,
                     "tau": split.meta.get("tau"),
                     "split": {k: v for k, v in split.meta.items() if k not in ("params", "split_hash")}},
        "env": environment(device),
    }
    env.clock.reset()
    own_cache: str | None = None  # for a backbone's own trial: trained here, or served from memory or disk
    t0 = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        seed_everything(spec.seed)
        if cls.cacheable:  # its own trial: fitting it is this method's cost, not a backbone's
            method, fit_info = env.fitted(cls, spec.options, spec.seed, spec.budget)
            own_cache = str(fit_info.get("cache", "trained")).split(":")[0]
        else:
            method = cls(dict(spec.options), env.context(spec.seed, spec.budget, audit, cls))
            fit_info = method.fit(env.views.train(audit))
        t_fit = time.perf_counter()
        vectors: dict[str, np.ndarray] = {}
        summary: dict[str, Any] = {}
        for part in PARTS:
            with env.clock.measure(f"{part}_eval_s"):
                summary.update(env.evaluator.evaluate(env, method, part, spec.seed, audit, save_scores, vectors))
        t_end = time.perf_counter()
        record.update(status="ok", fit=fit_info, metrics=summary, capacity=capacity(method, spec.options, fit_info),
                      timing=_timing(env.clock, t0, t_fit, t_end, own_cache))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a failed trial is recorded, the run goes on
        # SystemExit too: a sys.exit() inside a method ends that trial, not the run (Ctrl-C still stops the run)
        vectors = None
        error = (f"SystemExit({exc.code!r}) raised inside the method" if isinstance(exc, SystemExit)
                 else f"{type(exc).__name__}: {exc}")
        record.update(status="failed", error=error, traceback=traceback.format_exc(),
                      timing={"total_s": time.perf_counter() - t0})
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record["timing"]["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        record["timing"]["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return record, vectors
