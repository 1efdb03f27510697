"""Did a speed change move a method's quality? Test metrics of two results folders side by side, per method.

For each (dataset, protocol, method, default options) present in both folders: the mean and standard deviation
over seeds of the protocol's headline test metric on every subset, and the difference in units of the
seed-to-seed spread (|mean new - mean old| / sqrt(std_old^2 / n_old + std_new^2 / n_new)). Method versions may
differ (that is the point); splits must be the same (same split hash), else the row says so.

    python perf/quality_diff.py OLD_RESULTS NEW_RESULTS [--metric hr@10]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.protocols import PROTOCOLS  # noqa: E402
from benchmark.store import ResultStore  # noqa: E402


def collect(root: Path, metric: str | None) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for _, r in ResultStore(root, create=False).records(warn=False):
        if r.get("status") != "ok" or r["method"].get("variant") or r.get("audit"):
            continue
        protocol = r["protocol"]["name"]
        m = metric or PROTOCOLS[protocol].VALID_METRIC
        key = (r["dataset"]["name"], protocol, r["method"]["name"], r["method"]["budget"])
        row = out.setdefault(key, {"split": set(), "versions": set(), "seeds": {}})
        row["split"].add(r["protocol"]["split_hash"][:10])
        row["versions"].add(str(r["method"]["version"]))
        for subset, values in r["metrics"]["test"].items():
            if isinstance(values, dict) and values.get(m) is not None:
                row["seeds"].setdefault((subset, m), {})[r["seed"]] = float(values[m])
    return out


def main() -> None:
    from tabulate import tabulate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--metric", default=None, help="default: each protocol's validation metric")
    args = ap.parse_args()
    old, new = collect(args.old, args.metric), collect(args.new, args.metric)
    rows = []
    for key in sorted(old.keys() & new.keys()):
        a, b = old[key], new[key]
        for sm in sorted(a["seeds"].keys() & b["seeds"].keys()):
            x, y = list(a["seeds"][sm].values()), list(b["seeds"][sm].values())
            sx = statistics.stdev(x) if len(x) > 1 else float("nan")
            sy = statistics.stdev(y) if len(y) > 1 else float("nan")
            se = math.sqrt(sx ** 2 / len(x) + sy ** 2 / len(y)) if len(x) > 1 and len(y) > 1 else float("nan")
            d = statistics.mean(y) - statistics.mean(x)
            same_split = a["split"] == b["split"]
            rows.append([*key[:3], f"{sm[0]} {sm[1]}", "/".join(sorted(a["versions"])) + " -> " + "/".join(sorted(b["versions"])),
                         f"{statistics.mean(x):.4f} ± {sx:.4f} ({len(x)})", f"{statistics.mean(y):.4f} ± {sy:.4f} ({len(y)})",
                         f"{d:+.4f}", f"{abs(d) / se:.1f}" if se == se and se > 0 else "-",
                         "" if same_split else "SPLITS DIFFER"])
    print(tabulate(rows, headers=["dataset", "protocol", "method", "subset metric", "version", "old mean ± std (seeds)",
                                  "new mean ± std (seeds)", "new - old", "|diff| / s.e.", ""]))


if __name__ == "__main__":
    main()
