"""Markdown and CSV tables from the aggregated frame (LaTeX and significance tests come later)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmark.report import stages
from benchmark.report.profiles import profile
from benchmark.report.table import SUBSET_WORDS, metric_title
from benchmark.files import atomic_write



def _cell(mean: float, std: float) -> str:
    return f"{mean:.4f}" if std is None or (isinstance(std, float) and math.isnan(std)) else f"{mean:.4f} ± {std:.4f}"


def markdown(agg: pd.DataFrame, failed: list[dict], split: str = "test") -> str:
    lines = ["# promo-bench results", ""]
    if agg.empty:
        lines.append("No finished trials.")
    # a sampled protocol's part also has its full-catalogue ranking ("test.full"), shown after it
    part = agg[agg["split"].isin([split, f"{split}.full"])]
    keys = ["dataset", "protocol", "split_hash", "budget", "split"]
    for (dataset, protocol, shash, budget, shown), block in part.groupby(keys, sort=True):
        ranking = " (full-catalogue ranking)" if shown != split else ""
        prof = profile(protocol)
        if not prof.ranking:  # warm-up: the papers' table first, one column per stage
            for metric in stages.STAGE_METRICS:
                frame = stages.stage_frame(block, prof.subsets, metric, split)
                lines += [f"## {dataset} / {protocol} / {split}: {metric_title(metric)} per stage", "",
                          f"split {shash}; budget {budget}; mean ± sample std over seeds.", "",
                          stages.markdown(frame, prof.subsets, metric), ""]
        for subset in prof.subsets:
            sub = block[block["subset"] == subset]
            if sub.empty:
                continue
            n_events = int(sub["n_events"].max())
            seeds = sorted(set(sub["n_seeds"].astype(int)))
            metrics = list(dict.fromkeys(sub["metric"]))
            what = SUBSET_WORDS.get(subset, f"{subset} {prof.subset_noun}")
            lines += [f"## {dataset} / {protocol} / {split} / {what}{ranking}",
                      "", f"{n_events} {prof.unit}; split {shash}; budget {budget}; seeds per row: "
                          f"{', '.join(map(str, seeds))}; mean ± sample std over seeds. Rows marked AUDIT reproduce "
                          f"the released PROMO code's label leak and are not comparable results.", ""]
            table = []
            for (method, variant, audit), rows in sub.groupby(["method", "variant", "audit"], sort=True):
                vals = {r.metric: _cell(r.mean, r.std) for r in rows.itertuples()}
                label = f"{method} (AUDIT: leaky windows)" if audit else method
                table.append([label, variant or "", *[vals.get(m, "") for m in metrics]])
            lines.append(tabulate(table, headers=["method", "variant", *[metric_title(m) for m in metrics]],
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
        atomic_write(path, lambda fh: fh.write(text))
        written.append(path)
    if "csv" in formats:
        path = out_dir / "summary.csv"
        data = agg.to_csv(index=False, float_format="%.6f").encode("utf-8")
        atomic_write(path, lambda fh: fh.write(data))
        written.append(path)
    return written
