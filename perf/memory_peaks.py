"""Where memory peaks: one trial on a SYNTHETIC KuaiRand-format log, or the report's hierarchical bootstrap.

``trial ROWS [METHOD]`` writes a synthetic log of ROWS rows (``perf/bench_data.py``'s generator), plans METHOD
(default promo) on ``loo`` at the quick budget, runs it in this process, and samples this process's RSS every 0.1 s;
at each new peak (0.25 GiB above the last) it keeps the main thread's stack, so the table names the line that
allocated. ``bootstrap EVENTS`` times ``stats.hierarchical_bootstrap_cis`` on two (3, EVENTS) curves with its
peak RSS. ``split ROWS`` builds the ``loo`` split of a synthetic log, then loads it from the cache in a fresh
process as the report's cold-start curve does (``Split.load``, every array, for one test array) and prints that
process's peak. Figures in docs/results/scaling.md.

    python perf/memory_peaks.py trial 1436609 promo
    python perf/memory_peaks.py bootstrap 270000
    python perf/memory_peaks.py split 1436609
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def trial(rows: int, method: str) -> None:
    from bench_data import synthetic_kuairand

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PROMO_BENCH_CACHE"] = str(Path(tmp) / "cache")
        folder = Path(tmp) / "kuairand"
        synthetic_kuairand(folder, rows)
        import torch

        from benchmark.runner import plan
        from benchmark.trial import run_trial

        main, peaks, t0 = threading.main_thread().ident, [], time.perf_counter()

        def watch() -> None:
            best = 0.0
            while True:
                now = rss_gib()
                if now > best + 0.25:
                    best = now
                    stack = traceback.extract_stack(sys._current_frames()[main])[-6:]
                    peaks.append((time.perf_counter() - t0, now, " <- ".join(
                        f"{Path(s.filename).name}:{s.lineno} {s.name}" for s in reversed(stack))))
                time.sleep(0.1)

        threading.Thread(target=watch, daemon=True).start()
        (p,) = plan([method], ["kuairand-pure"], ["loo"], 1, "quick", {}, str(folder))
        record, _ = run_trial(p.spec, p.cls, p.split, p.inter, torch.device("cpu"))
        print(f"{method}/loo on {rows:,} synthetic rows, {torch.get_num_threads()} threads: {record['status']} in "
              f"{time.perf_counter() - t0:.0f} s (data, split and trial), peak RSS {peak_gib():.2f} GiB")
        for s, gib, where in peaks:
            print(f"{s:8.1f} s {gib:6.2f} GiB  {where}")


def bootstrap(events: int) -> None:
    import numpy as np

    from benchmark.stats import hierarchical_bootstrap_cis

    x = np.random.default_rng(1).random((3, events))
    t0 = time.perf_counter()
    cis = hierarchical_bootstrap_cis([x, x * 0.5])
    print(f"hierarchical_bootstrap_cis, 2 curves x 3 seeds x {events:,} events: {time.perf_counter() - t0:.1f} s, "
          f"peak RSS {peak_gib():.2f} GiB, intervals {cis}")


def split_load(rows: int) -> None:
    import subprocess

    from bench_data import synthetic_kuairand

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PROMO_BENCH_CACHE"] = str(Path(tmp) / "cache")
        synthetic_kuairand(Path(tmp) / "kuairand", rows)
        from benchmark.data.loader import load_dataset
        from benchmark.protocols import get_split

        get_split(load_dataset("kuairand-pure", str(Path(tmp) / "kuairand")), "loo")
        (path,) = (Path(tmp) / "cache").rglob("loo-*.npz")
        # VmHWM, not ru_maxrss: an exec'd child's ru_maxrss starts at the RSS this process had when it forked
        load = ("import sys; from pathlib import Path; from benchmark.protocols.split import Split; "
                "s = Split.load(Path(sys.argv[1])); used = s.part('test')['n_prior_pos'].nbytes; "
                "held = sum(v.nbytes for v in s.arrays.values()); "
                "hwm = [int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')][0]; "
                "print(f'Split.load: peak RSS {hwm / 2**20:.2f} GiB, "
                "arrays {held / 2**30:.2f} GiB, of which the curve uses test/n_prior_pos: {used / 2**20:.2f} MiB')")
        print(f"loo split of {rows:,} synthetic rows: {path.stat().st_size / 2**30:.2f} GiB on disk")
        subprocess.run([sys.executable, "-c", load, str(path)], check=True, cwd=HERE.parent)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("trial")
    t.add_argument("rows", type=int)
    t.add_argument("method", nargs="?", default="promo")
    b = sub.add_parser("bootstrap")
    b.add_argument("events", type=int)
    sub.add_parser("split").add_argument("rows", type=int)
    args = ap.parse_args()
    if args.what == "trial":
        trial(args.rows, args.method)
    elif args.what == "bootstrap":
        bootstrap(args.events)
    else:
        split_load(args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
