"""Performance of PROMO's three stages on ML-100K: rows per second per stage and one full trial's wall time.

Trains sasrec -> dssm-sasrec -> promo with an empty backbone cache (seed 0, chosen budget) on the given
device and prints a table. Not a test: nothing here asserts a time.

    python perf/bench_promo.py [--device cpu|cuda] [--budget paper|quick] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_skeleton import machine  # noqa: E402


def sasrec_step_ms(device, attn_dropout: float, steps: int = 30) -> float:
    """One SASRec training step at PROMO's shape (batch 128, length 50, d 16, 2 blocks, 4 heads)."""
    import torch

    from methods.sasrec import SASRecEncoder

    torch.manual_seed(0)
    net = SASRecEncoder(1682, 16, 50, 2, 4, 0.1, attn_dropout).to(device)
    opt = torch.optim.Adam(net.parameters())
    hist = torch.randint(0, 1682, (128, 50), device=device)
    mask = torch.rand(128, 50, device=device) > 0.3
    for k in range(steps + 3):
        if k == 3:
            t0 = time.perf_counter()
        loss = net.pooled(hist, mask).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget", default="paper")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    os.environ["PROMO_BENCH_CACHE"] = tempfile.mkdtemp(prefix="promo-bench-perf-")

    from benchmark.data.loader import load_dataset
    from benchmark.env import resolve_device
    from benchmark.protocols import get_split
    from benchmark.registry import get_method
    from benchmark.trial import TrialEnvironment, TrialSpec, run_trial

    device = resolve_device(args.device)
    print(f"machine: {machine(device)}; device {device}; budget {args.budget}")
    inter = load_dataset("ml-100k", args.data_dir)
    split, _ = get_split(inter, "loo")
    env = TrialEnvironment(split, inter, device)  # in-memory backbone cache only, empty at start
    rows = []
    t_all = time.perf_counter()
    for name in ("sasrec", "dssm-sasrec", "promo"):
        cls = get_method(name)
        options = cls.resolved_defaults(args.budget)
        spec = TrialSpec(name, cls.version, "perf", options, "", args.budget, "ml-100k", "loo", split.hash, 0)
        t0 = time.perf_counter()
        rec, _ = run_trial(spec, cls, split, inter, device, env=env)
        wall = time.perf_counter() - t0
        if rec["status"] != "ok":
            rows.append([name, "FAILED", rec["error"], "", "", ""])
            continue
        fit = rec["fit"]
        rows.append([name, f"{wall:.1f}", fit["epochs_run"], f"{fit['train_rows_seen']:,}",
                     f"{fit['train_rows_seen'] / wall:,.0f}", f"{rec['metrics']['test']['all']['hr@10']:.4f}"])
    total = time.perf_counter() - t_all
    print(tabulate(rows, headers=["stage (trained in order)", "wall s", "epochs", "train rows", "rows/s (incl. "
                                  "validation)", "test HR@10"]))
    print(f"\none full PROMO trial (all three stages, {args.budget} budget): {total:.1f} s")
    no_drop, drop = sasrec_step_ms(device, 0.0), sasrec_step_ms(device, 0.1)
    print(f"SASRec training step: {no_drop:.1f} ms without attention dropout (default), {drop:.1f} ms with 0.1")


if __name__ == "__main__":
    main()
