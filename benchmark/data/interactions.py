"""The in-memory interaction table every reader produces and every protocol consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Interactions:
    """Labelled interactions in the source's original row order, with dense integer ids.

    Dense ids index ``user_ids`` / ``item_ids`` (the raw ids, kept for output). Features are
    content only (no interaction statistic), one row per dense id.
    """

    dataset: str
    user: np.ndarray  # int64 dense user id per row
    item: np.ndarray  # int64 dense item id per row
    time: np.ndarray  # int64 timestamp per row
    value: np.ndarray  # float64 raw feedback value (rating, click flag ...)
    label: np.ndarray  # int8: 1 positive, 0 explicit negative
    user_ids: np.ndarray  # raw ids (str) by dense id
    item_ids: np.ndarray
    user_features: np.ndarray  # float32 (n_users, n_user_features)
    item_features: np.ndarray  # float32 (n_items, n_item_features)
    user_feature_names: tuple[str, ...]
    item_feature_names: tuple[str, ...]
    source: str  # which reader and folder produced it
    # A reader option that changes content beyond the rows (KuaiRand's whole-period statistics): part of the
    # canonical hash, so such data never shares a split, a fitted model or a trial id with the plain table.
    variant: str = ""
    # Not hashed: how the files were checked (``verification``) and the reader's notes.
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user)

    def canonical_hash(self) -> str:
        """sha256 of the canonical table: raw ids, time, value and label per row, in original order.

        Independent of the reader, so two readers of the same data give the same split hash. Computed
        once per object (the table is immutable; every trial asks for it).
        """
        if "_canonical" not in self.__dict__:
            self.__dict__["_canonical"] = self._canonical_hash()
        return self.__dict__["_canonical"]

    def features_hash(self) -> str:
        if "_features" not in self.__dict__:
            self.__dict__["_features"] = self._features_hash()
        return self.__dict__["_features"]

    def _canonical_hash(self) -> str:
        h = hashlib.sha256(b"promo-bench/interactions/v1\n")
        h.update("\x1f".join(self.user_ids[self.user].tolist()).encode("utf-8"))
        h.update(b"\x1e")
        h.update("\x1f".join(self.item_ids[self.item].tolist()).encode("utf-8"))
        h.update(b"\x1e")
        h.update(np.ascontiguousarray(self.time, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self.value, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.label, dtype="i1").tobytes())
        if self.variant:
            h.update(b"\x1evariant:" + self.variant.encode("utf-8"))
        return h.hexdigest()

    @property
    def label_name(self) -> str:
        """The dataset as results and tables name it: the card, plus the variant where there is one."""
        return f"{self.dataset}+{self.variant}" if self.variant else self.dataset

    def _features_hash(self) -> str:
        h = hashlib.sha256(b"promo-bench/features/v1\n")
        for names, mat in ((self.user_feature_names, self.user_features), (self.item_feature_names, self.item_features)):
            h.update("\x1f".join(names).encode("utf-8"))
            h.update(np.ascontiguousarray(mat, dtype="<f4").tobytes())
        return h.hexdigest()


def dense_ids(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map raw string ids to dense ints, ordered numerically when every id is an integer, else lexically."""
    uniq = np.unique(raw.astype(str))
    try:
        order = np.argsort(uniq.astype(np.int64), kind="stable")
        uniq = uniq[order]
    except ValueError:
        pass
    lookup = {rid: k for k, rid in enumerate(uniq.tolist())}
    dense = np.fromiter((lookup[r] for r in raw.astype(str).tolist()), dtype=np.int64, count=len(raw))
    return dense, uniq.astype(object)
