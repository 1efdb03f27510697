"""Markdown and CSV tables from the aggregated frame (LaTeX and significance tests come later)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmark.metrics import METRICS, SUBSETS
from benchmark.store import atomic_write_bytes

METRIC_TITLES = {"hr@5": "HR@5", "hr@10": "HR@10", "ndcg@5": "NDCG@5", "ndcg@10": "NDCG@10", "mrr": "MRR"}


def _cell(mean: float, std: float) -> str:
    return f"{mean:.4f}" if std is None or (isinstance(std, float) and math.isnan(std)) else f"{mean:.4f} ± {std:.4f}"


def markdown(agg: pd.DataFrame, failed: list[dict], split: str = "test") -> str:
    lines = ["# promo-bench results", ""]
    if agg.empty:
        lines.append("No finished trials.")
    part = agg[agg["split"] == split]
    keys = ["dataset", "protocol", "split_hash", "budget"]
    for (dataset, protocol, shash, budget), block in part.groupby(keys, sort=True):
        for subset in SUBSETS:
            sub = block[block["subset"] == subset]
            if sub.empty:
                continue
            n_events = int(sub["n_events"].max())
            seeds = sorted(set(sub["n_seeds"].astype(int)))
            lines += [f"## {dataset} / {protocol} / {split} / {subset} targets",
                      "", f"{n_events} events; split {shash}; budget {budget}; seeds per row: "
                          f"{', '.join(map(str, seeds))}; mean ± sample std over seeds. Rows marked AUDIT reproduce "
                          f"the released PROMO code's label leak and are not comparable results.", ""]
            table = []
            for (method, variant, audit), rows in sub.groupby(["method", "variant", "audit"], sort=True):
                vals = {r.metric: _cell(r.mean, r.std) for r in rows.itertuples()}
                label = f"{method} (AUDIT: leaky windows)" if audit else method
                table.append([label, variant or "", *[vals.get(m, "") for m in METRICS]])
            lines.append(tabulate(table, headers=["method", "variant", *[METRIC_TITLES[m] for m in METRICS]],
                                  tablefmt="github"))
            lines.append("")
    if failed:
        lines += ["## Failed trials", ""]
        lines.append(tabulate([[f["method"], f["seed"], f["error"], f["path"]] for f in failed],
                              headers=["method", "seed", "error", "record"], tablefmt="github"))
        lines.append("")
    return "\n".join(lines)


def write_report(agg: pd.DataFrame, failed: list[dict], out_dir: Path, formats: list[str]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        path = out_dir / "summary.md"
        text = markdown(agg, failed).encode("utf-8")
        atomic_write_bytes(path, lambda fh: fh.write(text))
        written.append(path)
    if "csv" in formats:
        path = out_dir / "summary.csv"
        data = agg.to_csv(index=False, float_format="%.6f").encode("utf-8")
        atomic_write_bytes(path, lambda fh: fh.write(data))
        written.append(path)
    return written
