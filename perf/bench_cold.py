"""Throughput of the ``cold`` protocol on ML-100K: per method, training rows per second and full-ranking
evaluation users per second; plus the evaluator alone on larger, synthetic score matrices.

Training rows are what the method's loop consumed (``train_rows_seen``: positives for BPR-style methods,
(user, item) targets for DropoutNet); evaluation is the trial's own pass over the validation and test users,
each scored against the whole catalogue and ranked under three candidate sets (no second fit). Not a test: nothing here asserts a time.

    python perf/bench_cold.py [--device cpu|cuda] [--budget quick|paper] [--data-dir DIR] [--methods M ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_skeleton import machine, protocol_bench_args, protocol_env, run_method  # noqa: E402

METHODS = ["random", "popular", "bpr-mf", "dssm", "content-knn", "deepmusic", "dropoutnet", "clcrec", "heater", "gar",
           "aldi"]


def evaluator_rate(device, n_users: int, n_items: int, rel_per_user: int = 20, batch: int = 1024) -> float:
    """Users per second of the metric computation alone (random scores), all three candidate sets."""
    import torch

    from benchmark.fullrank import metrics_from_scores

    gen = torch.Generator().manual_seed(0)
    cand = {s: (torch.rand(n_items, generator=gen) < p).to(device) for s, p in (("all", 1.0), ("cold", 0.1),
                                                                               ("warm", 0.9))}
    done, t0 = 0, None
    for start in range(-batch, n_users, batch):  # one warm-up batch
        b = min(batch, n_users - max(start, 0))
        scores = torch.rand(b, n_items, generator=gen).to(device)
        rel = (torch.rand(b, n_items, generator=gen) < rel_per_user / n_items).to(device)
        seen = (torch.rand(b, n_items, generator=gen) < 0.02).to(device)
        for mask in cand.values():
            metrics_from_scores(scores, rel, mask[None, :] & ~seen)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if t0 is None:
            t0 = time.perf_counter()
            continue
        done += b
    return done / (time.perf_counter() - t0)


def main() -> None:
    args = protocol_bench_args(__doc__, METHODS)
    env = protocol_env(args, "cold")
    inter, device = env.inter, env.device
    test = env.fullrank_part("test")
    n_eval_users = len(test.users) + len(env.fullrank_part("valid").users)
    rows = []
    for name in args.methods:
        t0 = time.perf_counter()
        record = run_method(env, name, args.budget)
        if record["status"] != "ok":
            rows.append([name, "FAILED", record["error"][:60], "", "", ""])
            continue
        fit = record.get("fit") or {}
        seen = fit.get("train_rows_seen")
        # the trial's own evaluation: one pass over the validation users and one over the test users
        eval_s = record["timing"]["eval_s"]
        cold = record["metrics"]["test"]["cold"]["ndcg@20"]
        rows.append([name, f"{record['timing']['fit_s']:.1f}",
                     f"{seen / record['timing']['fit_s']:,.0f}" if seen else "-",
                     f"{n_eval_users / eval_s:,.0f}", f"{time.perf_counter() - t0:.1f}", f"{cold:.4f}"])
    print(f"cold protocol, ML-100K ({len(test.users)} test users x {inter.n_items} items), budget {args.budget}, "
          f"device {device}: {machine(device)}")
    print(tabulate(rows, headers=["method", "fit s", "train rows/s", "eval users/s", "bench s", "cold NDCG@20"],
                   tablefmt="github"))
    print("fit s includes the per-epoch validation passes (full ranking of the validation users); train rows/s is "
          "rows consumed over fit s;\neval users/s is the trial's validation and test passes after fitting "
          "(score_all + 3 candidate sets).")
    sizes = [(6040, 3706, "ML-1M-sized"), (27285, 7583, "KuaiRand-Pure-sized")]
    ev = [[label, f"{u:,} x {i:,}", f"{evaluator_rate(device, u, i):,.0f}"] for u, i, label in sizes]
    print()
    print("evaluator alone (random scores, 20 relevant items per user, 3 candidate sets):")
    print(tabulate(ev, headers=["shape", "users x items", "users/s"], tablefmt="github"))


if __name__ == "__main__":
    main()
