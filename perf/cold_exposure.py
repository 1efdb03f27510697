"""Print how cold the test targets are *for the model* under ``loo`` and ``temporal`` on ML-100K (issue 36).

For each protocol: events and users, targets cold at the event (fewer than tau positives before it) and cold for
the model (fewer than tau positives in the training rows), how many training positives of a target come after
its event (the per-user split's leak: Ji et al., TOIS 2023), and HR@10 of scorers that read nothing but training
rows: "later" (an item's training positives at or after the event's time), "whole" (all its training positives),
``popular`` (the method: training positives strictly before the event) and chance, per subset.

    python perf/cold_exposure.py                    # the embedded ML-100K (or --data-dir DIR)
    python perf/cold_exposure.py --protocols loo    # one protocol

Runs on older commits for ``loo`` (a field a version lacks is recomputed from the training rows), which is how the
"before" figures were measured. No timing: these are protocol figures.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmark import metrics as M
from benchmark.data.loader import load_dataset
from benchmark.protocols import PROTOCOLS, get_split
from benchmark.registry import get_method
from benchmark.trial import TrialEnvironment, rank_events

BINS = ((0, 0), (1, 2), (3, 5), (6, 10), (11, 20), (21, 50))


def hr10(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    s, e = M.rank_counts(torch.from_numpy(scores.astype(np.float32)), torch.from_numpy(mask))
    return M.metric_from_counts("hr@10", s.numpy(), e.numpy())


def report(inter, protocol: str) -> None:
    split, _ = get_split(inter, protocol)
    tau = split.meta["params"]["tau"]
    tr = split.part("train")
    real = tr["label"] == 1
    if "sampled" in tr:
        real &= ~tr["sampled"].astype(bool)
    whole = np.bincount(tr["item"][real], minlength=inter.n_items)
    span = int(max(tr["time"].max(), split.part("test")["time"].max())) + 2
    keys = np.sort(tr["item"][real].astype(np.int64) * span + tr["time"][real])

    def before(items: np.ndarray, times: np.ndarray) -> np.ndarray:
        items = items.astype(np.int64)
        return np.searchsorted(keys, items * span + times) - np.searchsorted(keys, items * span)

    ev = split.part("test")
    n_train = whole[ev["item"]]
    prior = before(ev["item"], ev["time"])
    later = n_train - prior
    cold_event, cold_model = prior < tau, n_train < tau
    print(f"\n== {protocol} (split {split.hash[:12]}, tau {tau}) ==")
    print(f"test events {len(prior)} of {len(np.unique(ev['user']))} users; training rows "
          f"{split.meta['n_train_rows']}")
    meta = split.meta
    keys = ("t_valid", "t_test", "n_train_positives", "n_items_with_train_positive")
    print("split: " + ", ".join(f"{k} {meta[k]}" for k in keys if k in meta))
    for part, counts in meta["parts"].items():
        print(f"  {part}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in counts.items()))
    print(f"cold at the event (training positives before it < tau): {int(cold_event.sum())}; of these with >= tau "
          f"training positives in all (warm for the model): {int((cold_event & ~cold_model).sum())}; median later "
          f"training positives of a cold-at-event target: {np.median(later[cold_event]) if cold_event.any() else 0:g}")
    print(f"cold for the model (training positives < tau): {int(cold_model.sum())} ({cold_model.mean():.1%}); "
          f"never seen in training: {int((n_train == 0).sum())}")
    print("median later training positives by at-event bin: " + ", ".join(
        f"{lo}-{hi}: {np.median(later[(prior >= lo) & (prior <= hi)]):g}" for lo, hi in BINS
        if ((prior >= lo) & (prior <= hi)).any()))
    print("test events by training-positive bin (cold for the model): " + ", ".join(
        f"{lo}-{hi}: {int(((n_train >= lo) & (n_train <= hi)).sum())}" for lo, hi in BINS))
    cand, mask = ev["cand"], ev["cand_mask"]
    times = np.broadcast_to(ev["time"][:, None], cand.shape)
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    pop = get_method("popular")
    method = pop(pop.resolved_defaults("paper"), env.context(0, "paper", False))
    method.fit(env.views.train())
    s, e, _ = rank_events(method, env.views.events("test"))
    n_cand = mask.sum(1)
    scorers = {"later": hr10(whole[cand] - before(cand, times), mask), "whole": hr10(whole[cand].astype(float), mask),
               "popular": M.metric_from_counts("hr@10", s, e),
               "chance": M.metric_from_counts("hr@10", np.zeros(len(n_cand), dtype=np.int64), n_cand - 1)}
    subsets = {"all": np.ones(len(prior), dtype=bool), "cold-event": cold_event, "cold-model": cold_model,
               "warm-model": ~cold_model}
    print("HR@10 of training-row scorers: " + "; ".join(
        f"{name}: " + ", ".join(f"{sub} {v[m].mean():.4f}" for sub, m in subsets.items() if m.any())
        for name, v in scorers.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--protocols", nargs="+", default=[p for p in ("loo", "temporal") if p in PROTOCOLS])
    args = ap.parse_args()
    torch.set_num_threads(1)
    inter = load_dataset("ml-100k", args.data_dir)
    for protocol in args.protocols:
        report(inter, protocol)


if __name__ == "__main__":
    main()
