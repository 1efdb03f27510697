"""The warm-up table of the papers: one row per method, one column per stage (base, warm-a, warm-b, warm-c),
mean ± std over seeds, from the aggregated records. Significance marks live in the per-stage tables."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from benchmark.report.latex import escape
from benchmark.report.table import METHOD_ORDER, metric_title


STAGE_METRICS = ("auc", "auc_pooled")  # per-item AUC (the tested unit) and the papers' pooled AUC


def _order(method: str) -> tuple:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def stage_frame(agg: pd.DataFrame, stages: tuple[str, ...], metric: str, split: str = "test") -> pd.DataFrame:
    """Rows (dataset, method, variant, audit), columns stages, cells (mean, std)."""
    part = agg[(agg["split"] == split) & (agg["metric"] == metric) & agg["subset"].isin(stages)]
    rows = []
    for (dataset, method, variant, audit), block in part.groupby(["dataset", "method", "variant", "audit"], sort=False):
        cells = {r.subset: (r.mean, r.std) for r in block.itertuples()}
        rows.append({"dataset": dataset, "method": method, "variant": variant, "audit": audit,
                     **{s: cells.get(s) for s in stages}})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.iloc[sorted(range(len(frame)), key=lambda k: (frame["dataset"].iloc[k],
                                                                 _order(frame["method"].iloc[k])))]


def _fmt(cell, digits: int, plus_minus: str) -> str:
    if cell is None:
        return ""
    mean, std = cell
    return f"{mean:.{digits}f}" + ("" if std is None or math.isnan(std) else f"{plus_minus}{std:.{digits}f}")


def _label(row) -> str:
    return row["method"] + (f" [{row['variant']}]" if row["variant"] else "")


def markdown(frame: pd.DataFrame, stages: tuple[str, ...], metric: str, digits: int = 4) -> str:
    table = [[row["dataset"], _label(row), *[_fmt(row[s], digits, " ± ") for s in stages]] for _, row in frame.iterrows()]
    return tabulate(table, headers=["dataset", "method", *[f"{metric_title(metric)} {s}" for s in stages]],
                    tablefmt="github")


def latex(frame: pd.DataFrame, stages: tuple[str, ...], metric: str, digits: int = 4) -> str:
    """booktabs tabular; the best mean per (dataset, stage) in bold (by the displayed rounding)."""
    lines = [rf"\begin{{tabular}}{{ll{'c' * len(stages)}}}", r"\toprule",
             " & ".join(["Dataset", "Method", *[f"{escape(s)}" for s in stages]]) + r" \\",
             rf"\multicolumn{{2}}{{l}}{{}} & \multicolumn{{{len(stages)}}}{{c}}{{{metric_title(metric)}}} \\",
             r"\midrule"]
    best = {}
    for dataset, block in frame.groupby("dataset"):
        for s in stages:
            vals = [round(c[0], digits) for c in block[s] if c is not None]
            best[(dataset, s)] = max(vals) if vals else None
    for _, row in frame.iterrows():
        cells = []
        for s in stages:
            text = _fmt(row[s], digits, r" $\pm$ ")
            if row[s] is not None and round(row[s][0], digits) == best[(row["dataset"], s)]:
                text = rf"\textbf{{{text}}}"
            cells.append(text)
        lines.append(" & ".join([escape(row["dataset"]), escape(_label(row)), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
