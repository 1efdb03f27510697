"""Throughput of the ``warmup`` protocol on ML-100K: per method, fit time, the trial's stage loop (cold + three
warm-up stages on the validation and the test items) and labelled rows scored per second in it. Not a test:
nothing here asserts a time.

    python perf/bench_warmup.py [--device cpu|cuda] [--budget quick|paper] [--data-dir DIR] [--methods M ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_skeleton import machine  # noqa: E402

METHODS = ["random", "bpr-mf", "dssm", "deepmusic", "deepfm", "metaemb", "mwuf", "cvar"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget", default="quick", choices=["quick", "paper"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--methods", nargs="+", default=METHODS)
    args = ap.parse_args()
    os.environ.setdefault("PROMO_BENCH_CACHE", tempfile.mkdtemp(prefix="promo-bench-perf-"))

    import torch

    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split
    from benchmark.registry import get_method
    from benchmark.trial import TrialEnvironment, TrialSpec, run_trial

    device = torch.device(args.device)
    inter = load_dataset("ml-100k", args.data_dir)
    split, _ = get_split(inter, "warmup")
    env = TrialEnvironment(split, inter, device)
    parts = split.meta["parts"]
    # rows scored by the stage loop: each part's evaluation rows at 4 stages
    scored = sum(4 * p["n_eval_rows"] for p in parts.values())
    rows = []
    for name in args.methods:
        cls = get_method(name)
        opts = cls.resolved_defaults(args.budget)
        spec = TrialSpec(name, cls.version, "perf", opts, "", args.budget, "ml-100k", "warmup", split.hash, 0)
        record, _ = run_trial(spec, cls, split, inter, device, env=env)
        if record["status"] != "ok":
            rows.append([name, "FAILED", record["error"][:60], "", ""])
            continue
        t = record["timing"]
        test = record["metrics"]["test"]
        rows.append([name, f"{t['fit_s']:.1f}", f"{t['eval_s']:.2f}", f"{scored / t['eval_s']:,.0f}",
                     f"{test['cold']['auc_pooled']:.4f} -> {test['warm-c']['auc_pooled']:.4f}"])
    print(f"warmup protocol, ML-100K ({split.meta['n_new_test_items']} test items, {parts['test']['n_eval_rows']} "
          f"test rows), budget {args.budget}, device {device}: {machine(device)}")
    print(tabulate(rows, headers=["method", "fit s", "stage loop s", "eval rows/s", "test pooled AUC cold -> warm-c"],
                   tablefmt="github"))
    print("stage loop s: both parts, cold + 3 warm-up stages (warm-up steps included); eval rows/s counts only the "
          "scored evaluation rows.")


if __name__ == "__main__":
    main()
