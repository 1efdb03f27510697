"""Turn a reader's frames into an :class:`Interactions` table: dense ids, joined features, checked references.

Every reader ends here, so the rules are the same for every dataset: raw ids are text, dense ids follow
the raw ids' numeric order, only users and items that occur in the log get an id, and a log row that
names an unknown user or item is an error (or, where the card allows it, an entity with no features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.interactions import Interactions, dense_ids
from benchmark.errors import BenchError


@dataclass
class Entities:
    """One content table (users or items) in file order: raw ids and their encoded feature columns."""

    kind: str  # "user" or "item"
    ids: np.ndarray  # raw ids as str
    features: np.ndarray  # float32 (n, F)
    names: list[str]
    path: Path | str  # the file they came from, for errors

    def check_unique(self) -> None:
        dup = pd.Index(self.ids).duplicated()
        if dup.any():
            raise BenchError(f"{self.path}: {self.kind} id {str(self.ids[dup][0])!r} appears twice")


@dataclass
class Rows:
    """The labelled log rows in source order; ``user`` and ``item`` are raw ids as str."""

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray  # int64
    value: np.ndarray  # float64
    label: np.ndarray  # int8
    path: Path | str
    notes: list[str] = field(default_factory=list)


def _join(rows_ids: np.ndarray, table: Entities, rows_path: Path | str, missing: str,
          notes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense ids for the entities the log uses, each row's dense id, and the features in dense order."""
    used_raw = pd.unique(rows_ids)
    pos = pd.Index(table.ids).get_indexer(used_raw)
    unknown = used_raw[pos < 0]
    if len(unknown):
        if missing != "zeros":
            raise BenchError(f"{rows_path}: {table.kind} id {str(unknown[0])!r} is not in {table.path} "
                             f"({len(unknown)} such ids)")
        notes.append(f"{len(unknown)} {table.kind}s in the log have no row in {Path(str(table.path)).name}: "
                     f"their content features are all zero")
    dense, ids = dense_ids(used_raw.astype(str))
    order = np.empty(len(ids), dtype=np.int64)
    order[dense] = np.arange(len(ids))  # order[d] = index into used_raw of dense id d
    feats = np.zeros((len(ids), table.features.shape[1]), dtype=np.float32)
    known = pos[order] >= 0
    feats[known] = table.features[pos[order][known]]
    row_dense = pd.Index(ids.astype(str)).get_indexer(rows_ids)
    return ids, row_dense.astype(np.int64), feats


def assemble(dataset: str, rows: Rows, users: Entities, items: Entities, source: str, *, missing: str = "error",
             variant: str = "", provenance: dict[str, Any] | None = None) -> Interactions:
    """Dense ids and features for what the log uses; ``missing`` is the card's rule for unknown ids."""
    users.check_unique()
    items.check_unique()
    notes = list(rows.notes)
    user_ids, user, user_x = _join(rows.user.astype(str), users, rows.path, missing, notes)
    item_ids, item, item_x = _join(rows.item.astype(str), items, rows.path, missing, notes)
    prov = dict(provenance or {})
    if notes:
        prov["notes"] = prov.get("notes", []) + notes
    return Interactions(
        dataset=dataset, user=user, item=item, time=np.asarray(rows.time, dtype=np.int64),
        value=np.asarray(rows.value, dtype=np.float64), label=np.asarray(rows.label, dtype=np.int8),
        user_ids=user_ids, item_ids=item_ids, user_features=user_x, item_features=item_x,
        user_feature_names=tuple(users.names), item_feature_names=tuple(items.names), source=source,
        variant=variant, provenance=prov)
