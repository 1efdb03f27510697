"""The Method interface: what a method declares, what the harness hands it, what it must return.

The harness owns data, candidates, seeds, devices, early-stopping signals and metrics. A method
owns its model and loss. It sees training rows only while fitting; validation is reachable only
through ``ctx.validate()``, which returns the protocol's validation metric (HR@10 on ``loo``,
NDCG@20 over all candidates on ``cold``) and never exposes test events.

Data a method receives (all tensors already on the trial's device):

``data.train`` rows (``TensorTable``): ``user``, ``item``, ``label`` (1 positive / 0 explicit
negative), ``time``, and causal windows built from training rows strictly before each row's time:
``hist``/``hist_mask`` (the user's latest positive items, left-padded, latest last),
``fb_pos``/``fb_pos_mask`` and ``fb_neg``/``fb_neg_mask`` (the item's latest positive/negative users).

A scoring batch (``dict`` of tensors) has ``user`` (B,), ``time`` (B,), ``cand`` (B, C) candidate
items in a shuffled order (the positive's place is never revealed), ``cand_mask`` (B, C),
``hist``/``hist_mask`` (B, L) and ``fb_pos``/``fb_neg`` with masks (B, C, k), windows as of the
event's time. ``score`` returns (B, C) scores, higher is better;
ties are allowed (the harness breaks them fairly). C may be 101 sampled items or every item.

The ``warmup`` protocol scores labelled rows one by one with ``predict({"user", "item"}) -> (B,)`` logits and
warms new items up in a harness-owned loop: the same optimiser and budget for every method, on the tensors
``warm_parameters()`` returns, minimising ``warm_loss``; ``observe`` sees the warm-up rows shown so far
(benchmark/warmup_loop.py).

Full-ranking protocols (``cold``) call ``score_all({"user": (B,)})`` for a (B, n_items) matrix; the
default implementation calls ``score`` over item chunks, and embedding methods override it with one
matrix product. Such protocols have no event time and no windows (``data.meta["implicit"]`` is true:
every training row is a positive, so negatives come from ``data.negative_items``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator

import torch

from benchmark.tensors import TensorTable

# What a method may declare in ``requires``; the harness checks it against what the split provides.
ITEM_CHUNK = 512  # items per score() call in the default score_all
# The one early-stopping rule (issue 19): stop after this many validation passes without a better value of the
# protocol's validation metric, keep the best epoch. A method that differs says why (``patience_exception``).
PATIENCE = 5
CAPABILITIES = frozenset({"item_features", "user_features", "history", "feedback"})


@dataclass
class TrainData:
    """Everything a method may fit on: training rows plus per-entity content (no eval events)."""

    train: TensorTable
    n_users: int
    n_items: int
    user_features: torch.Tensor  # (n_users, Fu) float32
    item_features: torch.Tensor  # (n_items, Fi) float32
    item_train_pos_count: torch.Tensor  # (n_items,) positives per item in the training rows
    meta: dict[str, Any] = field(default_factory=dict)
    # column names of the feature matrices ("genre=Drama", "age25-34", ...): CTR models group them into fields
    user_feature_names: tuple[str, ...] = ()
    item_feature_names: tuple[str, ...] = ()

    @property
    def negative_items(self) -> torch.Tensor:
        """Items a method may draw as training negatives: those with a training positive (never a
        strict cold item, whose interactions are all held out)."""
        if not hasattr(self, "_negative_items"):
            self._negative_items = torch.nonzero(self.item_train_pos_count > 0).squeeze(1)
        return self._negative_items

    def positive_batches(self, batch_size: int, generator: torch.Generator) -> Callable[[], Iterator[torch.Tensor]]:
        """An epoch's shuffled index batches over the training positives (a callable, for ``train_epochs``)."""
        positives = torch.nonzero(self.train["label"] > 0).squeeze(1)
        return lambda: self.train.index_batches(batch_size, generator, rows=positives)

    def sample_negatives(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` items drawn uniformly from ``negative_items`` (on the data's device)."""
        pool = self.negative_items
        return pool[torch.randint(0, len(pool), (n,), generator=generator).to(pool.device)]


@dataclass
class TrialContext:
    """Per-trial services the harness offers a method."""

    device: torch.device
    seed: int
    budget: str
    generator: torch.Generator  # CPU generator seeded with the trial seed, for shuffles and sampling
    validate: Callable[["Method"], float]  # the protocol's validation metric of the method as it is now
    progress: Callable[[Iterable[Any], str], Iterator[Any]]  # wraps an epoch loop in a progress bar
    # fitted(name, overrides): registered method NAME with these option overrides, fitted on this trial's
    # split and seed -- trained once, cached, and shared (pretrained backbones). Call it before using any
    # randomness: afterwards the trial's RNGs are reseeded, so a cache hit and a miss give the same result.
    fitted: Callable[[str, dict[str, Any]], "Method"]
    audit: bool = False  # True when this trial's windows are the released code's leaky ones
    n_items: int = 0  # catalogue size (full-ranking protocols score every item)
    protocol: str = "loo"


def require_finite(scores: torch.Tensor, what: str) -> None:
    """Every evaluator refuses NaN and infinite scores alike: a tie rule over infinities would put a method at
    chance level under one protocol and fail it under another."""
    bad = ~torch.isfinite(scores)
    if bool(bad.any()):
        raise ValueError(f"{what} returned {int(bad.sum())} NaN or infinite values among {scores.numel()}; "
                         f"scores must be finite")


class Method(abc.ABC):
    """Base class of every method, built-in or plugin.

    Subclasses set ``name`` and ``version`` (bump it when results would change: it is part of the
    trial id), ``requires``, ``protocols``, option ``defaults`` and per-budget overrides.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    requires: ClassVar[frozenset[str]] = frozenset()
    protocols: ClassVar[frozenset[str]] = frozenset({"loo"})
    defaults: ClassVar[dict[str, Any]] = {}
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}
    # what ``promo-bench tune`` may vary (benchmark/space.py): option -> Float | Int | Choice; empty = not tunable
    # why this method's default ``patience`` is not PATIENCE (the one rule); empty when it is, or has none
    patience_exception: ClassVar[str] = ""
    search_space: ClassVar[dict[str, Any]] = {}
    # ranges of numeric options beyond the name rules of benchmark/ranges.py ({"alpha": Range(0, 1)}): checked
    # when a run is planned
    option_ranges: ClassVar[dict[str, Any]] = {}
    # A cacheable method (a backbone) implements get_state/set_state; its own trials and every method that
    # asks ctx.fitted() for it share one fitted copy per (options, split, seed).
    cacheable: ClassVar[bool] = False
    # The registered methods this one fetches through ctx.fitted() (its backbones). Their versions join this
    # method's trial id (registry.identity_version), so a changed backbone reruns every method built on it;
    # ctx.fitted() refuses a name not listed here.
    uses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: dict[str, Any], ctx: TrialContext) -> None:
        self.options = options
        self.ctx = ctx
        self.device = ctx.device
        self.fitted_info: dict[str, Any] = {}  # set by the harness when this instance came from ctx.fitted()

    @abc.abstractmethod
    def fit(self, data: TrainData) -> dict[str, Any]:
        """Train on ``data``; return a small JSON-able dict (best epoch, losses ...) for the record."""

    @abc.abstractmethod
    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores (B, C) for ``batch['cand']``; called under ``torch.no_grad()``."""

    def score_all(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, n_items) scores of every item for ``batch['user']``; override with a matrix product when possible."""
        users = batch["user"]
        n_items = int(self.ctx.n_items)
        out = []
        for start in range(0, n_items, ITEM_CHUNK):
            items = torch.arange(start, min(start + ITEM_CHUNK, n_items), device=users.device)
            cand = items[None, :].expand(len(users), -1)
            out.append(self.score({"user": users, "cand": cand, "cand_mask": torch.ones_like(cand, dtype=torch.bool)}))
        return torch.cat(out, dim=1)

    def get_state(self) -> dict[str, Any]:
        """Tensors (and JSON-able values) that restore the fitted method; required when ``cacheable``."""
        raise NotImplementedError(f"method {self.name!r} cannot be cached")

    def set_state(self, data: TrainData, state: dict[str, Any]) -> None:
        """Rebuild the fitted method from ``get_state()``'s output (no training)."""
        raise NotImplementedError(f"method {self.name!r} cannot be cached")

    # --- the ``warmup`` protocol (benchmark/warmup_loop.py runs the loop; every method gets the same budget) ---
    # True when predict() returns calibrated logits (trained with log-loss), so a log-loss is reported
    calibrated: ClassVar[bool] = False

    def predict(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) logits (or scores) of labelled rows ``rows['user']``, ``rows['item']``; differentiable when the
        method declares warm-up parameters. The default asks ``score`` with one candidate per row."""
        cand = rows["item"][:, None]
        return self.score({"user": rows["user"], "cand": cand, "cand_mask": torch.ones_like(cand, dtype=torch.bool)})[:, 0]

    def warm_parameters(self) -> list[torch.Tensor]:
        """The item-side tensors the harness may update on warm-up rows; [] (the default) means no warm-up,
        so the cold-start value is reported at every stage."""
        return []

    def warm_loss(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss minimised on a batch of warm-up rows (``user``, ``item``, ``label``): log-loss by default."""
        return torch.nn.functional.binary_cross_entropy_with_logits(self.predict(rows), rows["label"].float())

    def observe(self, rows: dict[str, torch.Tensor]) -> None:
        """Called after each warm-up stage with every warm-up row shown so far (this part's new items only), for
        methods whose item representation reads the item's interactions (MWUF's users, CVAR's count)."""

    @classmethod
    def resolved_defaults(cls, budget: str) -> dict[str, Any]:
        from benchmark.budgets import overrides

        out = dict(cls.defaults)
        out.update(overrides(cls, budget))
        return out


class NetState:
    """Mixin for cacheable methods that keep their model in ``self.net`` and build it with ``self._build(data)``."""

    net: Any

    def _build(self, data: TrainData) -> None:
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        return {"net": self.net.state_dict()}

    def set_state(self, data: TrainData, state: dict[str, Any]) -> None:
        self._build(data)
        self.net.load_state_dict(state["net"])
        self.net.eval()
