"""Write ``benchmark/costs_reference.json``, the cost model's fallback, from the records of a ``run --all``.

The plan's time estimate (``benchmark.costs``) uses earlier records on the same kind of machine when a results
folder has them; otherwise this table, scaled by dataset size. Each entry is the median over seeds of a trial's
own seconds (fit and evaluation, backbones excluded; a backbone's from the trial that fitted it:
``benchmark.costs.training_costs``) on ML-100K at the paper budget.

    python perf/cost_table.py RESULTS_FOLDER [--write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.costs import REFERENCE, training_costs  # noqa: E402
from benchmark.store import ResultStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--write", action="store_true", help=f"write {REFERENCE.relative_to(ROOT)}")
    ap.add_argument("--machine", default=None, help="name the machine when the records do not (older records)")
    args = ap.parse_args()
    machines, commits = set(), set()
    records = []
    for _, r in ResultStore(args.results, create=False).records():
        if r.get("status") != "ok" or r["dataset"]["name"] != "ml-100k" or r["method"]["budget"] != "paper":
            continue
        records.append(r)
        env = r["env"]
        if env.get("cpu") or not args.machine:
            machines.add(f"{env.get('cpu')}, {env.get('cpu_count')} cores, {env.get('threads')} threads, "
                         f"{env.get('device')}")
        commits.add(str(env.get("git_commit"))[:10])
    # the cost model's own reading: a backbone costs its fitting, wherever it was fitted
    # at protocol defaults only: the table is read for those (benchmark.costs.regime)
    own = {f"{m}/{p}": v for (m, p, _, _), v in training_costs(records).items() if "[" not in p}
    costs = {k: round(statistics.median(v), 2) for k, v in sorted(own.items())}
    table = {"machine": "; ".join(sorted(machines | ({args.machine} if args.machine else set()))), "commits": sorted(commits), "costs": costs,
             "made_by": f"python perf/cost_table.py {args.results} --write"}
    for k, v in costs.items():
        print(f"{k:28s} {v:9.2f} s")
    print(f"total {sum(costs.values()) / 60:.1f} min per seed; machine: {table['machine']}")
    if args.write:
        REFERENCE.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
