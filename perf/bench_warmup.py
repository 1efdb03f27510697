"""Throughput of the ``warmup`` protocol on ML-100K: per method, fit time, the trial's stage loop (cold + three
warm-up stages on the validation and the test items) and labelled rows scored per second in it. Not a test:
nothing here asserts a time.

    python perf/bench_warmup.py [--device cpu|cuda] [--budget quick|paper] [--data-dir DIR] [--methods M ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_skeleton import machine, protocol_bench_args, protocol_env, run_method  # noqa: E402

METHODS = ["random", "bpr-mf", "dssm", "deepmusic", "deepfm", "metaemb", "mwuf", "cvar"]


def main() -> None:
    args = protocol_bench_args(__doc__, METHODS)
    env = protocol_env(args, "warmup")
    split, device = env.split, env.device
    parts = split.meta["parts"]
    # rows scored by the stage loop: each part's evaluation rows at 4 stages
    scored = sum(4 * p["n_eval_rows"] for p in parts.values())
    rows = []
    for name in args.methods:
        record = run_method(env, name, args.budget)
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
