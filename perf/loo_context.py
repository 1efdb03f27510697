"""How much the validation events in the test context move SASRec, Pre-train (dssm-sasrec) and PROMO on ML-100K `loo`.

Each method is fitted once per seed on the default `loo` split (training and validation do not depend on the test
context) and its test events are scored twice on the *same* events and candidates: with the split's test windows
(training rows plus the validation events before the test time, `test_context_valid = true`) and with windows rebuilt
from the training rows alone (version 2's test context). Only the windows differ, so the gap is the context's effect
alone. (A split built with `test_context_valid = false` also draws other negatives, since existence then reads
training rows only; that would mix two effects.)

    python perf/loo_context.py --seeds 3 [--budget paper]

Backbones come from the fitted cache ($PROMO_BENCH_CACHE/fitted), so after `promo-bench run --suite paper` only
PROMO's prompt stage is trained here. Prints HR@10 per subset and the paired mean difference over events.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmark import metrics as M
from benchmark.data.loader import load_dataset
from benchmark.files import cache_root
from benchmark.fitted import FittedCache
from benchmark.protocols import get_split, loo
from benchmark.registry import get_method
from benchmark.tensors import TensorTable
from benchmark.trial import TrialEnvironment, rank_events, seed_everything

METHODS = ("sasrec", "dssm-sasrec", "promo")


def training_only_windows(split) -> dict[str, np.ndarray]:
    """The test events' windows from the training rows alone (loo's own window code, on the training rows)."""
    tr, te = split.part("train"), split.part("test")
    u, i, t, pos = (tr[k].astype(np.int64) for k in ("user", "item", "time", "place"))
    y = tr["label"]
    make = loo._window_maker(u, i, t, pos, y == 1, y == 0, split.meta["n_users"], split.meta["n_items"],
                             split.meta["params"], {"history": 0, "feedback_pos": 0, "feedback_neg": 0},
                             inclusive=False)
    out = make("test", te["user"], te["cand"], te["time"], te["place"], te["cand"].shape)
    return {k.split("/", 1)[1]: v for k, v in out.items()}


def fitted(env: TrialEnvironment, name: str, seed: int, budget: str):
    cls = get_method(name)
    seed_everything(seed)
    if cls.cacheable:
        return env.fitted(cls, {}, seed, budget)[0]
    method = cls(cls.resolved_defaults(budget), env.context(seed, budget, False))
    method.ctx.generator.manual_seed(seed)
    method.fit(env.views.train())
    return method


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", default="paper", choices=["quick", "paper"])
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    inter = load_dataset("ml-100k", args.data_dir)
    split, _ = get_split(inter, "loo")
    assert split.meta["params"]["test_context_valid"] and split.meta["params"]["min_prior_positives"] == 0
    env = TrialEnvironment(split, inter, torch.device("cpu"), FittedCache(cache_root() / "fitted"))
    with_valid = env.views.events("test")
    without = TensorTable({**split.part("test"), **training_only_windows(split)}, torch.device("cpu"))
    cold = with_valid.numpy("cold").astype(bool)
    subsets = {"all": np.ones_like(cold), "cold": cold, "warm": ~cold}
    print(f"loo v{split.meta['protocol_version']} split {split.hash[:12]}; {len(cold)} test events, "
          f"{int(cold.sum())} cold targets; {args.budget} budget, seeds 0..{args.seeds - 1}")
    print("method        context          " + "  ".join(f"{s:>6}" for s in subsets) + "   paired diff (all)")
    for name in METHODS:
        hr = {"train+valid": [], "train": []}
        for seed in range(args.seeds):
            method = fitted(env, name, seed, args.budget)
            for label, events in (("train+valid", with_valid), ("train", without)):
                s, e, _ = rank_events(method, events)
                hr[label].append(M.metric_from_counts("hr@10", s, e))
        diff = np.mean(hr["train+valid"], axis=0) - np.mean(hr["train"], axis=0)
        for label, values in hr.items():
            per_seed = [{k: float(v[sel].mean()) for k, sel in subsets.items()} for v in values]
            means = {k: np.mean([p[k] for p in per_seed]) for k in subsets}
            tail = f"   {diff.mean():+.4f} ({(diff > 0).sum()} up, {(diff < 0).sum()} down)" if label == "train" else ""
            print(f"{name:<13} {label:<16} " + "  ".join(f"{means[k]:.4f}" for k in subsets) + tail)


if __name__ == "__main__":
    main()
