"""Performance figures for the walking skeleton (issue 2): split build time and per-method trial cost.

Prints, for the machine it runs on: the time to read ML-100K and build the ``loo`` split with a cold
cache and with a warm one, then one trial per method (seed 0, chosen budget) with its wall time and
training rows per second. Not a test: nothing here asserts a time.

    python perf/bench_skeleton.py [--device cpu|cuda] [--budget paper|quick] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch
from tabulate import tabulate


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def protocol_bench_args(doc: str, methods: list[str]) -> argparse.Namespace:
    """The options of the per-protocol benchmarks (bench_cold, bench_warmup); each run gets a private split cache."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget", default="quick", choices=["quick", "paper"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--methods", nargs="+", default=methods)
    args = ap.parse_args()
    os.environ.setdefault("PROMO_BENCH_CACHE", tempfile.mkdtemp(prefix="promo-bench-perf-"))
    return args


def protocol_env(args: argparse.Namespace, protocol: str):
    """A TrialEnvironment on ML-100K's default ``protocol`` split on ``args.device``."""
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split
    from benchmark.trial import TrialEnvironment

    inter = load_dataset("ml-100k", args.data_dir)
    split, _ = get_split(inter, protocol)
    return TrialEnvironment(split, inter, torch.device(args.device))


def run_method(env, name: str, budget: str) -> dict:
    """One trial (seed 0, the budget's defaults) through the harness; returns its record."""
    from benchmark.registry import get_method
    from benchmark.trial import TrialSpec, run_trial

    cls = get_method(name)
    spec = TrialSpec(name, cls.version, "perf", cls.resolved_defaults(budget), "", budget, env.inter.dataset,
                     env.split.meta["protocol"], env.split.hash, 0)
    return run_trial(spec, cls, env.split, env.inter, env.device, env=env)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget", default="paper")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--methods", nargs="+", default=["random", "popular", "bpr-mf", "dssm"])
    args = ap.parse_args()
    os.environ["PROMO_BENCH_CACHE"] = tempfile.mkdtemp(prefix="promo-bench-perf-")

    from benchmark.config import resolve_options
    from benchmark.data.loader import load_dataset
    from benchmark.env import resolve_device
    from benchmark.protocols import get_split
    from benchmark.registry import get_method
    from benchmark.trial import TrialSpec, run_trial

    device = resolve_device(args.device)
    print(f"machine: {machine(device)}; device {device}")
    rows = []
    for label in ("cold cache", "warm cache"):
        t0 = time.perf_counter()
        inter = load_dataset("ml-100k", args.data_dir)
        t1 = time.perf_counter()
        split, cached = get_split(inter, "loo")
        t2 = time.perf_counter()
        assert cached == (label == "warm cache")
        rows.append([label, f"{t1 - t0:.2f}", f"{t2 - t1:.2f}", f"{t2 - t0:.2f}"])
    print(tabulate(rows, headers=["loo split of ML-100K", "read s", "split s", "total s"]))
    print()

    rows = []
    for name in args.methods:
        cls = get_method(name)
        options, _ = resolve_options(name, cls.defaults, cls.budgets.get(args.budget, {}), {})
        spec = TrialSpec(name, cls.version, "perf", options, "", args.budget, "ml-100k", "loo", split.hash, 0)
        rec, _ = run_trial(spec, cls, split, inter, device)
        if rec["status"] != "ok":
            rows.append([name, "FAILED", rec["error"], "", "", ""])
            continue
        fit = rec.get("fit", {})
        seen = fit.get("train_rows_seen")
        rps = f"{seen / rec['timing']['fit_s']:,.0f}" if seen else "n/a"
        rows.append([name, f"{rec['timing']['total_s']:.1f}", f"{rec['timing']['fit_s']:.1f}", fit.get("epochs_run", "-"),
                     rps, f"{rec['metrics']['test']['all']['hr@10']:.4f}"])
    print(tabulate(rows, headers=[f"method ({args.budget}, seed 0)", "wall s", "fit s", "epochs", "train rows/s",
                                  "test HR@10"]))


if __name__ == "__main__":
    main()
