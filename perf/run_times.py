"""Where a results folder's time went: trial seconds per protocol and per (method, protocol), from the records.

    python perf/run_times.py RESULTS

Each trial's ``timing.total_s`` (its wall time, backbones it trained included) and ``backbone_s``; the per-row
range is over its seeds. The figures in README and docs/results/ml-100k-run-all.md come from this script."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.store import ResultStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    rows: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for _, rec in ResultStore(args.results).current_records(warn=False):
        if rec.get("status") == "ok":
            t = rec["timing"]
            rows[(rec["method"]["name"], rec["protocol"]["name"])].append((t["total_s"], t.get("backbone_s", 0.0)))
    per_protocol: dict[str, float] = defaultdict(float)
    for (_, protocol), trials in rows.items():
        per_protocol[protocol] += sum(s for s, _ in trials)
    total = sum(per_protocol.values())
    print(f"{sum(len(v) for v in rows.values())} ok trials, {total / 60:.0f} min of trial time: "
          + ", ".join(f"{p} {s / 60:.0f} min" for p, s in sorted(per_protocol.items())))
    ranked = sorted(rows.items(), key=lambda kv: -sum(s for s, _ in kv[1]))
    for (method, protocol), trials in ranked[:args.top]:
        secs = sorted(s for s, _ in trials)
        bb = sorted(b for _, b in trials)
        print(f"{method:12s} {protocol:7s} {sum(secs):6.0f} s over {len(secs)} trials ({secs[0]:.0f}-{secs[-1]:.0f} s "
              f"each), backbones {sum(bb):.0f} s ({bb[0]:.0f}-{bb[-1]:.0f} s each)")


if __name__ == "__main__":
    main()
