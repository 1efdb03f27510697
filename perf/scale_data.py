"""How cost grows with rows: split build, trials and the report on SYNTHETIC KuaiRand-Pure-format logs.

For each ``--rows`` size (default: a tenth of KuaiRand-Pure's standard log, the log's 1,436,609 rows, and 10x that)
it writes a synthetic log (``perf/bench_data.py``'s generator: real or fixture feature files, random users, Zipf
videos, increasing times), then, each step in its own process so wall time and peak RSS are its own:
read + ``loo`` split, read + ``cold`` split, one trial per (method, protocol) of ``--trials`` (default bpr-mf on
loo and cold, PROMO on loo), and ``report``. Trials use ``--budget`` (default ``quick``: one to five epochs; the
point is the cost per row, not quality). Prints one row per step with seconds per million rows, so linear growth
reads as a constant column. Timing only: the logs are random, their metrics mean nothing.

    python perf/scale_data.py [--rows 143660 1436609 14366090] [--trials bpr-mf/loo promo/loo] [--budget quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # the harness, for the records (children get it through PYTHONPATH)

from bench_data import KUAIRAND_ROWS, synthetic_kuairand  # noqa: E402

DEFAULT_TRIALS = ["bpr-mf/loo", "bpr-mf/cold", "promo/loo"]


def limit_memory(gib: float):
    """A child's address-space cap: past it the child fails with MemoryError instead of waking the OOM killer."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (int(gib * 2**30), int(gib * 2**30)))
    return cap


def child_split(folder: str, protocol: str) -> dict:
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split

    t0 = time.perf_counter()
    inter = load_dataset("kuairand-pure", folder)
    t1 = time.perf_counter()
    split, _ = get_split(inter, protocol)  # built once here, then served from the cache to the trials
    return {"read_s": t1 - t0, "s": time.perf_counter() - t1, "rows": len(inter),
            "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def run_cli(args: list[str], env: dict, gib: float) -> tuple[float, float, str]:
    """Wall seconds and peak RSS GiB of one ``promo-bench`` child (``os.wait4``: its own rusage), and its last
    stderr line when it failed."""
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], env=env, stdout=subprocess.DEVNULL,
                                stderr=err, cwd=HERE.parent, text=True, preexec_fn=limit_memory(gib))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        last = (err.read().strip().splitlines() or ["(no output)"])[-1]
    return wall, usage.ru_maxrss / 2**20, last if proc.returncode else ""


def where_time_went(results: str, method: str, protocol: str) -> str:
    """The stored record's own split of the trial's time (README, "Each record's `timing`"): each backbone it
    trained (a backbone's seconds include the backbones it fits in turn), its own fit, and the final evaluation;
    the wall time beside it adds start-up and reading the data and the cached split."""
    from benchmark.store import ResultStore

    for _, rec in ResultStore(results, create=False).records():
        if rec["method"]["name"] == method and rec["protocol"]["name"] == protocol:
            t = rec["timing"]
            parts = [f"{b['name']} {b['s']:.0f} s ({b['cache']})" for b in t.get("backbones", [])]
            return ", ".join([*parts, f"fit {t['fit_s']:.0f} s", f"eval {t['eval_s']:.0f} s"])
    return "no record"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[KUAIRAND_ROWS // 10, KUAIRAND_ROWS, KUAIRAND_ROWS * 10])
    ap.add_argument("--trials", nargs="+", default=DEFAULT_TRIALS, metavar="METHOD/PROTOCOL")
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-gib", type=float, default=16.0, help="address-space cap per step (MemoryError past it)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child_split(*args.child)))
        return 0
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"Python {platform.python_version()}; budget {args.budget}; SYNTHETIC logs (timing only)")
    print(f"{'rows':>11} {'step':24} {'wall s':>8} {'s / M rows':>10} {'peak GiB':>9}  note")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "kuairand"
            synthetic_kuairand(folder, rows)
            env = {**os.environ, "PROMO_BENCH_CACHE": str(Path(tmp) / "cache"), "OMP_NUM_THREADS": str(args.threads),
                   "PYTHONPATH": f"{HERE.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
            per_m = rows / 1e6

            def show(step: str, wall: float, gib: float, note: str = "") -> None:
                print(f"{rows:>11,} {step:24} {wall:>8.1f} {wall / per_m:>10.1f} {gib:>9.2f}  {note}", flush=True)

            for protocol in ("loo", "cold"):
                out = subprocess.run([sys.executable, __file__, "--child", str(folder), protocol], env=env,
                                     capture_output=True, text=True, preexec_fn=limit_memory(args.max_gib))
                if out.returncode:
                    show(f"split {protocol}", float("nan"), float("nan"), out.stderr.strip().splitlines()[-1])
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                show(f"read + split {protocol}", r["read_s"] + r["s"], r["rss_gib"], f"read {r['read_s']:.1f} s")
            data = ["--dataset", "kuairand-pure", "--data-dir", str(folder), "--allow-unverified", "--no-progress"]
            results = str(Path(tmp) / "results")
            for trial in args.trials:
                method, protocol = trial.split("/")
                wall, gib, err = run_cli(["run", "--method", method, "--protocol", protocol, "--seeds", "1",
                                          "--budget", args.budget, "--results", results, *data], env, args.max_gib)
                show(f"trial {trial}", wall, gib, err or where_time_went(results, method, protocol))
            wall, gib, err = run_cli(["report", "--results", results, "--out", str(Path(tmp) / "reports")], env,
                                     args.max_gib)
            show("report", wall, gib, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
