"""Per-method cost on ML-100K, per protocol: seconds per epoch, epochs, trial wall time, backbone time, start-up,
peak RSS, and each time as a ratio to a calibration workload measured in the same process.

Each (tree, method, protocol) runs in a fresh worker process (so start-up and peak RSS are its own) on the
paper budget's options with the epochs capped (``--epochs``, default 2, patience raised so none stops early):
per-epoch cost is what a full trial repeats; ``--epochs 0`` keeps the paper budget (a full trial). The method's
backbones are fitted first in the same worker, timed apart, then served from memory to the timed trial.

``--compare TREE`` runs the same workload in another checkout (e.g. ``git worktree add /tmp/old <commit>``)
in the same run of this script, the two trees interleaved method by method, so a before/after table comes from
one quiet stretch of the same machine. The calibration (a fixed small-MLP training loop, the kind of work these
methods do) makes figures from different machines or noisy runs comparable: ``x calib`` = seconds / calibration
seconds. Not a test: nothing here asserts a time.

    python perf/bench_methods.py [--methods M ...] [--protocols loo cold warmup] [--epochs 2] [--threads 2]
                                 [--compare /tmp/old] [--data-dir DIR] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
DEFAULT_METHODS = ["sasrec", "dssm-sasrec", "promo", "finetune", "ppr", "cb2cf", "dssm", "bpr-mf", "dropoutnet",
                   "heater", "gar", "clcrec", "aldi", "deepmusic", "deepfm", "dcn", "cdn", "plate", "metaemb"]
EPOCH_KEYS = {"epochs": "patience", "prompt_epochs": "prompt_patience"}


def calibration_s(device: str) -> float:
    """Seconds for a fixed workload: 200 Adam steps of a 64-200-200 tanh MLP on a 1024-row batch."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 200), torch.nn.Tanh(), torch.nn.Linear(200, 200)).to(device)
    opt = torch.optim.Adam(net.parameters())
    x = torch.randn(1024, 64, device=device)
    for k in range(220):
        if k == 20:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def worker(job: dict) -> dict:
    """Run inside the tree under test (its packages first on sys.path); print one JSON line."""
    t_start = job["t_start"]
    import resource

    import torch

    torch.set_num_threads(job["threads"])
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split
    from benchmark.registry import get_method
    from benchmark.trial import TrialEnvironment, TrialSpec, run_trial

    inter = load_dataset("ml-100k", job["data_dir"])
    split, _ = get_split(inter, job["protocol"])
    env = TrialEnvironment(split, inter, torch.device(job["device"]))
    ready = time.time() - t_start  # imports, registry, data and split from the cache

    def options(name: str) -> dict:
        cls = get_method(name)
        opts = cls.resolved_defaults("paper")
        if job["epochs"]:
            for key, patience in EPOCH_KEYS.items():
                if key in opts:
                    opts[key] = min(opts[key], job["epochs"])
                    if patience in opts:
                        opts[patience] = max(opts[patience], job["epochs"])
        return opts

    def trial(name: str) -> dict:
        cls = get_method(name)
        spec = TrialSpec(name, cls.version, "perf", options(name), "", "paper", inter.dataset, job["protocol"],
                         split.hash, 0)
        t0 = time.perf_counter()
        rec = run_trial(spec, cls, split, inter, env.device, env=env)[0]
        rec["_wall"] = time.perf_counter() - t0
        return rec

    original = TrialEnvironment.fitted

    def capped(self, cls, overrides, seed, budget):  # backbones train with the same epoch cap as the method
        opts = {**options(cls.name), **overrides}
        return original(self, cls, {k: v for k, v in opts.items() if k in cls.defaults}, seed, budget)

    TrialEnvironment.fitted = capped
    backbone_s = 0.0
    for name in job["backbones"]:
        rec = trial(name)
        if rec["status"] != "ok":
            return {"error": f"backbone {name}: {rec.get('error')}"}
        backbone_s += rec["_wall"]
    calib = calibration_s(job["device"])
    rec = trial(job["method"])
    if rec["status"] != "ok":
        return {"error": rec.get("error", "failed")}
    fit = rec.get("fit", {})
    epochs = fit.get("epochs_run")
    timing = rec["timing"]
    fit_s = timing["fit_s"]  # backbones were fitted above and come from memory here, in either tree
    part = next(iter(rec["metrics"]["test"]))  # "all", or the base stage on warmup
    metric = next(iter(rec["metrics"]["test"][part].items()))
    return {"startup_s": ready, "backbone_s": backbone_s, "fit_s": fit_s, "epochs": epochs,
            "epoch_s": fit_s / epochs if epochs else None, "eval_s": timing["eval_s"], "trial_s": rec["_wall"],
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "calib_s": calib,
            "metric": f"{metric[0]} {metric[1]:.4f}"}


def run_worker(tree: Path, job: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": str(job["threads"]), "PROMO_BENCH_CACHE": job["cache"]}
    job = {**job, "t_start": time.time()}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)], cwd=tree,
                         env=env, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    ap.add_argument("--protocols", nargs="+", default=["loo", "cold", "warmup"])
    ap.add_argument("--epochs", type=int, default=2, help="epoch cap (0: the paper budget as is)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--compare", type=Path, default=None, help="another checkout to measure in the same run")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        sys.path.insert(0, os.getcwd())
        print(json.dumps(worker(json.loads(args.worker))))
        return

    from tabulate import tabulate

    sys.path.insert(0, str(TREE))
    from benchmark.registry import get_method
    from benchmark.runner import backbone_chain

    trees = [("now", TREE)] + ([("before", args.compare.resolve())] if args.compare else [])
    cache = {label: tempfile.mkdtemp(prefix=f"promo-bench-perf-{label}-") for label, _ in trees}
    from benchmark.env import cpu_model

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {args.threads} threads per worker, "
          f"device {args.device}; epochs capped at {args.epochs or 'the paper budget'}")
    rows, raw = [], []
    for name in args.methods:
        cls = get_method(name)
        chain = backbone_chain(cls)  # deepest first
        for protocol in args.protocols:
            if protocol not in cls.protocols:
                continue
            for label, tree in trees:
                job = {"method": name, "protocol": protocol, "backbones": chain,
                       "epochs": args.epochs, "threads": args.threads, "device": args.device,
                       "data_dir": args.data_dir, "cache": cache[label]}
                r = run_worker(tree, job)
                raw.append({"tree": label, "method": name, "protocol": protocol, **r})
                if "error" in r:
                    rows.append([name, protocol, label, "FAILED", r["error"][:60]] + [""] * 8)
                    continue
                c = r["calib_s"]
                rows.append([name, protocol, label, f"{r['epoch_s']:.2f}" if r["epoch_s"] else "-",
                             f"{r['epoch_s'] / c:.1f}" if r["epoch_s"] else "-", r["epochs"] or "-",
                             f"{r['trial_s']:.1f}", f"{r['trial_s'] / c:.1f}", f"{r['backbone_s']:.1f}",
                             f"{r['startup_s']:.1f}", f"{r['rss_mb']:.0f}", f"{c:.2f}", r["metric"]])
                print(tabulate([rows[-1]], tablefmt="plain"), flush=True)
    print()
    print(tabulate(rows, headers=["method", "protocol", "tree", "s/epoch", "x calib", "epochs", "trial s", "x calib",
                                  "backbone s", "start-up s", "peak RSS MB", "calib s", "test"]))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
