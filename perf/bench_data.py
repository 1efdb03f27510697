"""Time and peak memory to read and split ML-1M's real prefix and a KuaiRand-Pure-sized log.

The KuaiRand-sized log is SYNTHETIC (timing only): 1,436,609 rows in the official log columns over the real
feature files' 27,285 users and 7,583 videos (../shared's copies; the test fixtures' otherwise), with random
users, videos, clicks and increasing times. Each case runs in its own process so peak RSS is its own.
Target (issue 8): a KuaiRand-Pure-sized loo split in under 60 s and 4 GiB.

    python perf/bench_data.py [--rows N] [--protocol loo]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
KUAIRAND_ROWS = 1_436_609
LOG_COLUMNS = ("user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,"
               "long_view,play_time_ms,duration_ms,profile_stay_time,comment_stay_time,is_profile_enter,is_rand,tab")


def synthetic_kuairand(folder: Path, rows: int) -> None:
    """Official-format log plus the real (or fixture) feature files."""
    real = SHARED / "kuairand-pure" / "KuaiRand-Pure" / "data"
    features = real if (real / "user_features_pure.csv").is_file() else REPO / "tests/fixtures/kuairand-pure/KuaiRand-Pure/data"
    data = folder / "KuaiRand-Pure" / "data"
    data.mkdir(parents=True)
    for name in ("user_features_pure.csv", "video_features_basic_pure.csv"):
        shutil.copy(features / name, data / name)
    n_users = sum(1 for _ in open(data / "user_features_pure.csv")) - 1
    n_videos = sum(1 for _ in open(data / "video_features_basic_pure.csv")) - 1
    rng = np.random.default_rng(0)
    user = rng.integers(0, n_users, rows)
    video = np.minimum(rng.zipf(1.3, rows) - 1, n_videos - 1)  # long-tailed popularity
    t = 1649376000000 + np.sort(rng.integers(0, 14 * 86400 * 1000, rows))
    click = (rng.random(rows) < 0.55).astype(int)
    zeros = np.zeros(rows, dtype=int)
    cols = [user, video, np.full(rows, 20220408), zeros, t, click, zeros, zeros, zeros, zeros, zeros, click,
            click * 1000, np.full(rows, 9000), zeros, zeros, zeros, zeros, np.ones(rows, dtype=int)]
    import pandas as pd  # its C writer: np.savetxt formats value by value, minutes at 10x KuaiRand's size

    pd.DataFrame(dict(zip(LOG_COLUMNS.split(","), cols))).to_csv(data / "log_standard_4_08_to_4_21_pure.csv",
                                                                 index=False)


def measure(dataset: str, folder: str, protocol: str) -> dict:
    """In this process: read, then build the split (no cache), with wall time and peak RSS."""
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split

    t0 = time.perf_counter()
    inter = load_dataset(dataset, folder)
    t1 = time.perf_counter()
    split, cached = get_split(inter, protocol, rebuild=True)
    t2 = time.perf_counter()
    return {"rows": len(inter), "users": inter.n_users, "items": inter.n_items, "read_s": t1 - t0,
            "split_s": t2 - t1, "train_rows": split.meta["n_train_rows"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=KUAIRAND_ROWS)
    p.add_argument("--protocol", default="loo")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], args.protocol)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        if (SHARED / "ml-1m" / "ml-1m" / "movies.dat").is_file():
            cases.append(("ml-1m (real prefix, users 1-2999)", "ml-1m", str(SHARED / "ml-1m")))
        else:
            print(f"note: {SHARED / 'ml-1m'} absent; ML-1M case skipped", file=sys.stderr)
        t0 = time.perf_counter()
        synthetic_kuairand(Path(tmp) / "kuairand", args.rows)
        print(f"wrote the synthetic log in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        cases.append((f"kuairand-pure-sized log (SYNTHETIC, {args.rows:,} rows)", "kuairand-pure", str(Path(tmp) / "kuairand")))
        env = dict(os.environ, PROMO_BENCH_CACHE=str(Path(tmp) / "cache"))
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}; protocol {args.protocol}")
        print(f"{'case':58} {'rows':>10} {'users':>7} {'items':>6} {'read s':>7} {'split s':>8} {'peak RSS MiB':>13}")
        for label, dataset, folder in cases:
            out = subprocess.run([sys.executable, __file__, "--child", dataset, folder, "--protocol", args.protocol],
                                 env=env, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{label:58} {r['rows']:>10,} {r['users']:>7,} {r['items']:>6,} {r['read_s']:>7.1f} "
                  f"{r['split_s']:>8.1f} {r['peak_rss_mib']:>13,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
