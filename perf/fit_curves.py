"""Print each stored trial's validation curve (the early-stopping metric per pass) for chosen methods.

Training that jumps from pass to pass, or that stops at its cap while improving, shows here. Reads the records'
``fit.valid_curve`` and ``fit.best_epoch`` (methods that report them), so the figures docs quote come from the
committed records.

    python perf/fit_curves.py docs/results/temporal-run --methods promo dssm-sasrec
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--methods", nargs="+", required=True)
    args = ap.parse_args()
    for method in args.methods:
        lows, highs, best = [], [], []
        for path in sorted(args.results.rglob(f"*/{method}/*.json")):
            rec = json.loads(path.read_text())
            curve = rec.get("fit", {}).get("valid_curve") if rec.get("status") == "ok" else None
            if not curve:
                continue
            lows.append(min(curve))
            highs.append(max(curve))
            best.append(rec["fit"].get("best_epoch"))
            print(f"{method} {rec['protocol']['name']} seed {rec['seed']}: best pass {rec['fit'].get('best_epoch')} "
                  f"of {len(curve)}; " + " ".join(f"{v:.3f}" for v in curve))
        if lows:
            print(f"{method}: validation values {min(lows):.3f} to {max(highs):.3f}; best passes "
                  f"{min(best)} to {max(best)}\n")


if __name__ == "__main__":
    main()
