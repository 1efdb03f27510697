"""Print what the full-catalogue ranking adds to each trial of a results folder (issue 36 part 3).

Per method and protocol: trials, the median seconds of the full-catalogue ranking (both parts; the record's
``timing.full_rank_s``), of the sampled evaluation (``eval_s`` minus it) and of the whole trial, and the full
ranking's median share of the trial. Times are the records' own, so the machine is the one that ran them
(``env`` in each record names it).

    python perf/full_rank_cost.py docs/results/temporal-run
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    args = ap.parse_args()
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    machines = set()
    for path in sorted(args.results.rglob("*.json")):
        rec = json.loads(path.read_text())
        timing = rec.get("timing", {})
        if rec.get("status") != "ok" or "full_rank_s" not in timing:
            continue
        full, total = float(timing["full_rank_s"]), float(timing["total_s"])
        rows[(rec["method"]["name"], rec["protocol"]["name"])].append((full, float(timing["eval_s"]) - full, total))
        env = rec.get("env", {})
        machines.add(f"{env.get('cpu', '?')}, {env.get('threads', '?')} threads")
    if not rows:
        raise SystemExit(f"{args.results}: no ok records with timing.full_rank_s (records from before issue 36?)")
    print(f"machine(s): {'; '.join(sorted(machines))}")
    print("| method | protocol | trials | full ranking s | sampled eval s | trial s | full share |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (method, protocol), vals in sorted(rows.items()):
        full, sampled, total = (np.array(v) for v in zip(*vals))
        print(f"| {method} | {protocol} | {len(vals)} | {np.median(full):.1f} | {np.median(sampled):.1f} | "
              f"{np.median(total):.1f} | {np.median(full / total):.1%} |")


if __name__ == "__main__":
    main()
