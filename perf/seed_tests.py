"""How many of a results folder's significant comparisons survive the seed-aware tests (issue 19 part 4).

    python perf/seed_tests.py RESULTS [--protocol loo] [--reference promo]

For each subset of the protocol's tables, builds the table under ``t``, ``seeds`` and ``bootstrap`` and prints the
significant comparisons and the detectable differences, then how many of the t-test's marks each other test keeps."""

from __future__ import annotations

import argparse

from benchmark.report.events import EventCache, group_trials, rows_by_table
from benchmark.report.profiles import profile
from benchmark.report.table import build_table
from benchmark.store import ResultStore

TESTS = ("t", "seeds", "bootstrap")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--protocol", default="loo")
    ap.add_argument("--budget", default="paper")
    ap.add_argument("--reference", default="promo")
    args = ap.parse_args()
    store = ResultStore(args.results)
    rows = rows_by_table(group_trials(store))[(args.protocol, args.budget)]
    cache = EventCache(store)
    prof = profile(args.protocol)
    sig: dict[str, set] = {t: set() for t in TESTS}
    for subset in prof.subsets:
        for test in TESTS:
            table = build_table(rows, cache, split="test", subset=subset, metrics=list(prof.metrics),
                                reference=args.reference, test=test)
            marks = {(subset, c.b, c.metric) for c in table.comparisons if c.significant}
            sig[test] |= marks
            detect = ", ".join(f"{m} {lo:.3f}/{hi:.3f}" for m, (lo, hi) in table.detectable.items())
            print(f"{subset:5s} {test:9s} testable {sum(c.testable for c in table.comparisons):4d}  significant "
                  f"{len(marks):4d}  detectable (alpha / alpha/m): {detect}")
    for test in TESTS[1:]:
        lost = sig["t"] - sig[test]
        by = {s: sum(1 for x in lost if x[0] == s) for s in prof.subsets}
        print(f"{test}: of {len(sig['t'])} significant under t, {len(lost)} do not survive {by}; "
              f"{len(sig[test] - sig['t'])} significant only under {test}")


if __name__ == "__main__":
    main()
