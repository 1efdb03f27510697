"""Markdown, CSV and JSON renderings of a TableModel (the same table as the LaTeX one)."""

from __future__ import annotations

import io
import json

import pandas as pd
from tabulate import tabulate

from benchmark.report.table import Table, fmt, metric_title


def _md_cell(table: Table, row, col: int) -> str:
    cell = table.cells.get((row, col))
    if cell is None:
        return "–"
    text = fmt(cell.mean, table.digits)
    if cell.std is not None:
        text += f" ± {fmt(cell.std, table.digits)}"
    if cell.bold:
        text = f"**{text}**"
    if cell.underline:
        text = f"_{text}_"
    return text + ("†" if cell.dagger else "‡" if cell.ddagger else "")


def markdown(table: Table) -> str:
    headers = ["method"] + [f"{c.label} {metric_title(c.metric)}" for c in table.columns]
    body = [[table.name(r)] + [_md_cell(table, r, k) for k in range(len(table.columns))] for r in table.baselines]
    if table.reference is not None:
        body.append([f"**{table.name(table.reference)}**"] + [_md_cell(table, table.reference, k)
                                                      for k in range(len(table.columns))])
        body.append(["Improv."] + ["–" if v is None else f"{v:+.1f}%" for v in table.improvement])
    body += [[table.name(r)] + [_md_cell(table, r, k) for k in range(len(table.columns))] for r in table.extras]
    caption = table.caption(std=True).replace("$\\dagger$", "†").replace("$\\ddagger$", "‡")
    notes = "".join(f"\n- {n}" for n in table.notes)
    return f"{tabulate(body, headers=headers, tablefmt='github')}\n\n{caption}{notes}\n"


def frame(table: Table) -> pd.DataFrame:
    recs = []
    for row in table.rows:
        role = "reference" if row == table.reference else "extra" if row in table.extras else "baseline"
        for k, c in enumerate(table.columns):
            cell = table.cells.get((row, k))
            if cell is None:
                continue
            recs.append({"method": row.method, "variant": row.variant, "audit": row.audit, "role": role,
                         "dataset": c.label, "metric": c.metric, "mean": cell.mean, "std": cell.std,
                         "n_seeds": cell.n_seeds, "n_events": c.n_events, "bold": cell.bold,
                         "underline": cell.underline, "dagger": cell.dagger, "ddagger": cell.ddagger,
                         "name": table.name(row)})
    return pd.DataFrame(recs)


def csv(table: Table) -> str:
    buf = io.StringIO()
    frame(table).to_csv(buf, index=False, float_format="%.6f")
    return buf.getvalue()


def as_json(table: Table) -> str:
    payload = {"protocol": table.protocol, "budget": table.budget, "split": table.split, "subset": table.subset,
               "test": table.test, "alpha": table.alpha, "correction": "holm",
               "reference": table.reference.label if table.reference else None, "caption": table.caption(),
               "cells": [{k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}
                         for rec in frame(table).to_dict(orient="records")],
               "improvement": [{"dataset": c.label, "metric": c.metric, "percent": v}
                               for c, v in zip(table.columns, table.improvement)],
               "comparisons": [c.to_dict() for c in table.comparisons], "notes": table.notes}
    return json.dumps(payload, indent=1, allow_nan=False, default=lambda o: None) + "\n"
