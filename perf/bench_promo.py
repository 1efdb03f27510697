"""Performance of PROMO's three stages on ML-100K: rows per second per stage and one full trial's wall time.

Trains sasrec -> dssm-sasrec -> promo with an empty backbone cache (seed 0, chosen budget) on the given
device and prints a table. Not a test: nothing here asserts a time.

    python perf/bench_promo.py [--device cpu|cuda] [--budget paper|quick] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_skeleton import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget", default="paper")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    os.environ["PROMO_BENCH_CACHE"] = tempfile.mkdtemp(prefix="promo-bench-perf-")

    from benchmark.data.loader import load_dataset
    from benchmark.env import resolve_device
    from benchmark.protocols import get_split
    from benchmark.registry import get_method
    from benchmark.trial import TrialEnvironment, TrialSpec, run_trial

    device = resolve_device(args.device)
    print(f"machine: {machine(device)}; device {device}; budget {args.budget}")
    inter = load_dataset("ml-100k", args.data_dir)
    split, _ = get_split(inter, "loo")
    env = TrialEnvironment(split, inter, device)  # in-memory backbone cache only, empty at start
    rows = []
    t_all = time.perf_counter()
    for name in ("sasrec", "dssm-sasrec", "promo"):
        cls = get_method(name)
        options = cls.resolved_defaults(args.budget)
        spec = TrialSpec(name, cls.version, "perf", options, "", args.budget, "ml-100k", "loo", split.hash, 0)
        t0 = time.perf_counter()
        rec, _ = run_trial(spec, cls, split, inter, device, env=env)
        wall = time.perf_counter() - t0
        if rec["status"] != "ok":
            rows.append([name, "FAILED", rec["error"], "", "", ""])
            continue
        fit = rec["fit"]
        rows.append([name, f"{wall:.1f}", fit["epochs_run"], f"{fit['train_rows_seen']:,}",
                     f"{fit['train_rows_seen'] / wall:,.0f}", f"{rec['metrics']['test']['all']['hr@10']:.4f}"])
    total = time.perf_counter() - t_all
    print(tabulate(rows, headers=["stage (trained in order)", "wall s", "epochs", "train rows", "rows/s (incl. "
                                  "validation)", "test HR@10"]))
    print(f"\none full PROMO trial (all three stages, {args.budget} budget): {total:.1f} s")


if __name__ == "__main__":
    main()
