"""Print the `loo` split's audit figures on ML-100K (docs/protocols.md, issue 16): event and cold-target counts,
the events the existence rule leaves out, the "empty feedback windows" scorer against chance per subset, and
`popular` with causal and whole-period counts.

    python perf/loo_figures.py                      # the embedded ML-100K (or --data-dir DIR)
    python perf/loo_figures.py --protocol-set test_context_valid=false

Written to run on older commits too (fields a version lacks are reported as absent), so a figure "before" a fix
comes from the same script as the figure after it. No timing: these are protocol figures, not performance.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from benchmark import metrics as M
from benchmark.data.loader import load_dataset
from benchmark.method import Method, TrainData
from benchmark.protocols import get_split, parse_protocol_options
from benchmark.registry import get_method
from benchmark.trial import TrialEnvironment, rank_events


class EmptyWindows(Method):
    """1 where both of a candidate's feedback windows are empty, else 0."""

    name = "empty-windows"

    def fit(self, data: TrainData) -> dict:
        return {}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return (~(batch["fb_pos_mask"].any(-1) | batch["fb_neg_mask"].any(-1))).float()


def by_subset(values: np.ndarray, subsets: dict[str, np.ndarray]) -> str:
    return "  ".join(f"{name} {values[sel].mean():.4f}" if sel.any() else f"{name} -" for name, sel in subsets.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--protocol-set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(1)
    inter = load_dataset("ml-100k", args.data_dir)
    raw = dict(kv.split("=", 1) for kv in args.protocol_set)
    overrides = parse_protocol_options({"loo": raw}).get("loo") if raw else None
    split, _ = get_split(inter, "loo", overrides)
    meta = split.meta
    print(f"loo version {meta['protocol_version']}, split {split.hash[:12]}, params {json.dumps(meta['params'])}")
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    pop_cls = get_method("popular")
    variants = {"default": pop_cls.resolved_defaults("paper")}
    if "count" in pop_cls.defaults:
        variants["count=whole"] = dict(variants["default"], count="whole")
    tr = split.part("train")
    positive = tr["label"] == 1
    span = int(max(tr["time"].max(), split.part("test")["time"].max())) + 2
    keys = np.sort(tr["item"][positive].astype(np.int64) * span + tr["time"][positive])

    def before(items: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Training positives of each item strictly before the time, from the split's arrays (any version)."""
        items = items.astype(np.int64)
        return np.searchsorted(keys, items * span + times) - np.searchsorted(keys, items * span)

    print(f"training rows {meta['n_train_rows']}; rows in the context but not trained "
          f"{meta.get('n_context_rows_not_trained', 'absent')}")
    valid_item = dict(zip(split.part("valid")["user"].tolist(), split.part("valid")["item"].tolist()))
    for part in ("valid", "test"):
        ev = split.part(part)
        cold = ev["cold"].astype(bool)
        subsets = {"all": np.ones_like(cold), "cold": cold, "warm": ~cold}
        if "tail" in ev:
            subsets["tail"] = ev["tail"].astype(bool)
        counts = meta["parts"][part]
        print(f"\n[{part}] events {len(cold)}; cold targets {int(cold.sum())} ({cold.mean():.1%}); "
              f"left out by the existence rule {counts.get('n_events_positive_not_existing', 'absent')}; "
              f"whole-period tail targets {counts.get('n_tail_targets', 'absent')}; "
              f"histories holding the user's validation item {counts.get('n_histories_with_own_valid_item', 'absent')}")
        causal_cold = before(ev["item"], ev["time"]) < meta["params"]["tau"]
        print(f"  targets flagged warm with fewer than tau training positives before the event: "
              f"{int((~cold & causal_cold).sum())} of {int((~cold).sum())}")
        if part == "test":
            held = [u in valid_item and bool(np.any((h == valid_item[u]) & m))
                    for u, h, m in zip(ev["user"].tolist(), ev["hist"], ev["hist_mask"])]
            print(f"  test histories holding the user's evaluated validation item: {sum(held)} of {len(held)}")
        events = env.views.events(part)
        n_cand = events.numpy("cand_mask").sum(1)
        chance = M.metric_from_counts("hr@10", np.zeros(len(n_cand), dtype=np.int64), n_cand - 1)
        s, e, _ = rank_events(EmptyWindows({}, env.context(0, "paper", False)), events)
        print(f"  chance HR@10:               {by_subset(chance, subsets)}")
        print(f"  empty-windows scorer HR@10: {by_subset(M.metric_from_counts('hr@10', s, e), subsets)}")
        counts = before(ev["cand"], np.broadcast_to(ev["time"][:, None], ev["cand"].shape))
        s, e = M.rank_counts(torch.from_numpy(counts.astype(np.float32)), torch.from_numpy(ev["cand_mask"]))
        print(f"  causal-count scorer HR@10:  {by_subset(M.metric_from_counts('hr@10', s.numpy(), e.numpy()), subsets)}")
        for label, options in variants.items():
            method = pop_cls(dict(options), env.context(0, "paper", False))
            method.fit(env.views.train())
            s, e, _ = rank_events(method, events)
            print(f"  popular ({label}) HR@10:  {by_subset(M.metric_from_counts('hr@10', s, e), subsets)}")


if __name__ == "__main__":
    main()
