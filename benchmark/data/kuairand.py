"""KuaiRand-Pure (Gao et al., CIKM 2022): the official CSVs, read as PROMO's released notebook reads them.

Rows come from the card's logs (default the 4_08-4_21 standard log, as PROMO used), in file order, one
after the other. ``is_click`` is the label: 1 positive, 0 an explicit negative (shown, not clicked); the
time is ``time_ms``. Content features are the basic video table and the user table. The whole-period
``video_features_statistic_pure.csv`` counts (plays, likes, shares ...) leak future popularity into a cold
item's "content" (promo-spec section 11, trap 8), so they are read only with ``with_statistics`` and the
table is then a separate variant (``kuairand-pure+statistics``) with its own hashes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.assemble import Entities, Rows, assemble
from benchmark.data.card import DatasetCard
from benchmark.data.encode import encode_table
from benchmark.data.interactions import Interactions
from benchmark.data.logs import read_int_columns, require_binary
from benchmark.data.tables import read_delimited, require_columns, require_time_range
from benchmark.data.verify import find_file
from benchmark.errors import BenchError

LOG_COLUMNS = ["user_id", "video_id", "time_ms", "is_click"]
USERS = "KuaiRand-Pure/data/user_features_pure.csv"
VIDEOS = "KuaiRand-Pure/data/video_features_basic_pure.csv"
STATISTICS = "KuaiRand-Pure/data/video_features_statistic_pure.csv"


def log_files(options: dict[str, Any]) -> list[str]:
    logs = options.get("logs", [])
    if not logs:
        raise BenchError("kuairand-pure: the card's [options] logs is empty; name at least one log file")
    return [f"KuaiRand-Pure/data/{name}" for name in logs]


def needed(card: DatasetCard, folder: Path, options: dict[str, Any]) -> list[str]:
    return log_files(options) + [USERS, VIDEOS] + ([STATISTICS] if options.get("with_statistics") else [])


def _path(folder: Path, rel: str, expected: str) -> Path:
    path = find_file(folder, rel)
    if path is None:
        raise BenchError(f"{folder}: {Path(rel).name} not found (looked for {rel} and its tails; expected {expected})")
    return path


def read_entities(card: DatasetCard, folder: Path, options: dict[str, Any]) -> tuple[Entities, Entities]:
    """The user and video content tables, encoded as the card says (no interaction is read)."""
    upath = _path(folder, USERS, "the official user feature table")
    users = read_delimited(upath, ",", None, header=True, quoted=True, expected="the official KuaiRand user feature CSV")
    require_columns(users, upath, ["user_id"])
    umat, unames = encode_table(users, card.features["user"], str(upath))
    vpath = _path(folder, VIDEOS, "the official basic video feature table")
    videos = read_delimited(vpath, ",", None, header=True, quoted=True, expected="the official KuaiRand basic video feature CSV")
    require_columns(videos, vpath, ["video_id"])
    vmat, vnames = encode_table(videos, card.features["item"], str(vpath))
    video_ids = videos["video_id"].str.strip().to_numpy(dtype=str)
    if options.get("with_statistics"):
        smat, snames = _statistics(_path(folder, STATISTICS, "the official video statistic table"), video_ids)
        vmat, vnames = np.concatenate([vmat, smat], axis=1), vnames + snames
    return (Entities("user", users["user_id"].str.strip().to_numpy(dtype=str), umat, unames, upath),
            Entities("item", video_ids, vmat, vnames, vpath))


def _statistics(path: Path, video_ids: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Every count column divided by its column maximum, as PROMO's notebook does (audit only: it leaks)."""
    table = read_delimited(path, ",", None, header=True, quoted=True, expected="the official video statistic CSV")
    require_columns(table, path, ["video_id"])
    cols = [c for c in table.columns if c != "video_id"]
    values = np.stack([pd.to_numeric(table[c].str.strip(), errors="coerce").fillna(0.0).to_numpy() for c in cols],
                      axis=1)
    top = values.max(axis=0)
    values = values / np.where(top > 0, top, 1.0)
    pos = pd.Index(table["video_id"].str.strip()).get_indexer(video_ids)
    out = np.zeros((len(video_ids), len(cols)), dtype=np.float32)
    out[pos >= 0] = values[pos[pos >= 0]]
    return out, [f"stat_{c}" for c in cols]


def read_rows(card: DatasetCard, folder: Path, options: dict[str, Any]) -> Rows:
    frames, paths = [], []
    for rel in log_files(options):
        path = _path(folder, rel, "an official KuaiRand-Pure log")
        frame = read_int_columns(path, LOG_COLUMNS, "the official KuaiRand log columns "
                                 "(user_id,video_id,date,hourmin,time_ms,is_click,...)")
        require_binary(frame["is_click"].to_numpy(), path, "is_click")
        require_time_range(frame["time_ms"].to_numpy(dtype=np.int64), card.checks, path, "time_ms", first_line=2,
                           per_second=1000)
        frames.append(frame)
        paths.append(path)
    log = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    click = log[card.labels.get("column", "is_click")].to_numpy()
    return Rows(user=log["user_id"].to_numpy().astype(str), item=log["video_id"].to_numpy().astype(str),
                time=log["time_ms"].to_numpy(dtype=np.int64), value=click.astype(np.float64),
                label=(click == 1).astype(np.int8), path=", ".join(str(p) for p in paths))


def load(card: DatasetCard, folder: Path, how: str, options: dict[str, Any]) -> Interactions:
    users, items = read_entities(card, folder, options)
    rows = read_rows(card, folder, options)
    variant = "statistics" if options.get("with_statistics") else ""
    return assemble(card.name, rows, users, items, f"kuairand-csv:{how}:{folder}", missing="zeros", variant=variant)
