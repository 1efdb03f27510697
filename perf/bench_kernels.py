"""The kernels issue 18 made faster, each against what it replaced, on this machine.

- dropout: ``nn.Dropout`` against ``methods/layers.py``'s ``Dropout`` (same law) on a 3072 x 200 tensor, p = 0.5;
- SASRec's ``history_vectors`` over ML-100K's ``loo`` training rows: every row encoded against each distinct window
  once (``DEDUP_ROWS`` raised above the row count for the former), with the largest difference of the outputs;
- full ranking (``benchmark/fullrank.py``): the metric core on 1024 users x 1682 items, and one ``cold`` validation
  pass over ML-100K (a random dot-product scorer); with ``--compare OLD_CHECKOUT`` the same two figures from that
  checkout's code, measured in a subprocess of this run.

Medians of repeated timings; set ``--threads`` (default 2). Not a test: nothing here asserts a time.

    python perf/bench_kernels.py [--threads 2] [--compare /tmp/old]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

TREE = Path(__file__).resolve().parents[1]


def median_s(fn: Callable[[], object], repeats: int, warm: int = 2) -> float:
    for _ in range(warm):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fullrank_figures() -> dict[str, float]:
    """The metric core and one cold validation pass, with whatever ``benchmark`` is first on sys.path."""
    import torch

    from benchmark import fullrank
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split
    from benchmark.trial import TrialEnvironment

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(1024, 1682, generator=g)
    rel, valid = torch.rand(1024, 1682, generator=g) < 0.02, torch.rand(1024, 1682, generator=g) < 0.9
    core = median_s(lambda: fullrank.metrics_from_scores(scores, rel, valid), 10)
    inter = load_dataset("ml-100k", os.environ.get("BENCH_DATA_DIR") or None)
    split, _ = get_split(inter, "cold")
    part = TrialEnvironment(split, inter, torch.device("cpu")).fullrank_part("valid")
    users, items = torch.randn(inter.n_users, 64, generator=g), torch.randn(inter.n_items, 64, generator=g)

    class DotScorer:
        name = "dot"

        def score_all(self, batch):
            return users[batch["user"]] @ items.T

    valid_pass = median_s(lambda: fullrank.evaluate(DotScorer(), part, subsets=("all",)), 15)
    return {"core_ms": 1000 * core, "valid_pass_s": valid_pass, "users": len(part.users)}


def in_process(threads: int, data_dir: str | None) -> list[list[str]]:
    import torch
    from torch import nn

    import methods.sasrec as S
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split
    from benchmark.trial import TrialEnvironment
    from methods.layers import Dropout

    torch.set_num_threads(threads)
    rows = []
    x = torch.randn(3072, 200, requires_grad=True)
    for label, layer in (("nn.Dropout", nn.Dropout(0.5)), ("layers.Dropout", Dropout(0.5))):
        fwd = median_s(lambda: layer(x), 30)
        both = median_s(lambda: layer(x).sum().backward(), 30)
        rows.append([f"dropout 3072x200, {label}", f"{1000 * fwd:.2f} ms forward", f"{1000 * both:.2f} ms with backward"])

    inter = load_dataset("ml-100k", data_dir)
    split, _ = get_split(inter, "loo")
    train = TrialEnvironment(split, inter, torch.device("cpu")).views.train(False).train
    hist, mask = train["hist"], train["hist_mask"]
    torch.manual_seed(0)
    model = S.SASRec.__new__(S.SASRec)  # an untrained encoder: the cost does not depend on the weights
    model.net = S.SASRecEncoder(inter.n_items, 16, 50, 2, 4, 0.1).eval()
    distinct = model.history_vectors(hist, mask)
    t_distinct = median_s(lambda: model.history_vectors(hist, mask), 3, warm=0)
    threshold, S.DEDUP_ROWS = S.DEDUP_ROWS, len(hist) + 1
    try:
        every = model.history_vectors(hist, mask)
        t_every = median_s(lambda: model.history_vectors(hist, mask), 3, warm=0)
    finally:
        S.DEDUP_ROWS = threshold
    n_distinct = len(torch.unique(torch.where(mask, hist, torch.full_like(hist, -1)), dim=0))
    rows.append([f"history_vectors, {len(hist):,} rows ({n_distinct:,} distinct windows)",
                 f"{t_every:.2f} s every row -> {t_distinct:.2f} s distinct",
                 f"max |diff| {float((every - distinct).abs().max()):.1e}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--compare", type=Path, default=None, help="an older checkout for the full-ranking figures")
    ap.add_argument("--fullrank-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fullrank_only:  # run with another checkout first on sys.path
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(fullrank_figures()))
        return
    sys.path.insert(0, str(TREE))
    from tabulate import tabulate

    from benchmark.env import cpu_model

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {args.threads} threads")
    rows = in_process(args.threads, args.data_dir)
    for label, tree in [("now", TREE)] + ([("before", args.compare.resolve())] if args.compare else []):
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads),
               "BENCH_DATA_DIR": args.data_dir or ""}
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--fullrank-only", "--threads",
                              str(args.threads)], cwd=tree, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            rows.append([f"full ranking ({label})", "FAILED", out.stderr.strip().splitlines()[-1:]])
            continue
        fr = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append([f"full ranking ({label}, {tree})", f"{fr['core_ms']:.1f} ms core (1024 x 1682)",
                     f"{fr['valid_pass_s']:.3f} s cold validation pass ({fr['users']} users)"])
    print(tabulate(rows, tablefmt="plain"))


if __name__ == "__main__":
    main()
