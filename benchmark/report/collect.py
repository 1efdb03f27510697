"""Result records -> a long pandas frame, and its aggregation over seeds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.report.events import dataset_label
from benchmark.store import ResultStore

GROUP = ["dataset", "protocol", "split_hash", "budget", "method", "variant", "audit", "split", "subset", "metric"]
CSV_COLUMNS = ["dataset", "protocol", "method", "variant", "audit", "budget", "split", "subset", "metric", "mean",
               "std", "n_seeds", "n_events", "split_hash"]


def collect(store: ResultStore, records: list[tuple[Path, dict]] | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """One row per (ok trial, split, subset, metric); failed records are returned separately.
    ``records``: the store's current records when the caller has read them already."""
    rows, failed = [], []
    for path, rec in (records if records is not None else store.current_records()):
        if rec.get("status") != "ok":
            failed.append({"path": str(path), "method": rec["method"]["name"], "seed": rec.get("seed"),
                           "error": rec.get("error", "?")})
            continue
        base = {"dataset": dataset_label(rec), "protocol": rec["protocol"]["name"],
                "split_hash": rec["protocol"]["split_hash"][:12], "budget": rec["method"]["budget"],
                "method": rec["method"]["name"], "variant": rec["method"].get("variant", ""),
                "audit": bool(rec.get("audit", False)), "seed": rec["seed"],
                "trial_id": rec["trial_id"]}
        for split, subsets in rec["metrics"].items():
            for subset, values in subsets.items():
                n_events = values.get("n_events", 0)
                for metric, value in values.items():
                    if metric.startswith("n_") or value is None or not isinstance(value, (int, float)):
                        continue  # counts, and nested details such as a warm-up stage's steps
                    rows.append({**base, "split": split, "subset": subset, "metric": metric, "value": value,
                                 "n_events": n_events})
    return pd.DataFrame(rows), failed


def aggregate(long: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds (std is empty with one seed); differently configured trials never merge."""
    if long.empty:
        return pd.DataFrame(columns=CSV_COLUMNS)
    agg = long.groupby(GROUP, sort=False, dropna=False).agg(
        mean=("value", "mean"), std=("value", "std"), n_seeds=("seed", "nunique"), n_events=("n_events", "max"))
    return agg.reset_index()[CSV_COLUMNS]
