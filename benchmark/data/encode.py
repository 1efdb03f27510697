"""Content-feature encoders shared by every reader.

Each returns a float32 matrix (one row per entity, in the order given) and the column names. Names are
``field=value`` for categorical columns and ``field<edge``-style for buckets, so models can group columns
into fields. Vocabularies come from the content table itself (the item or user file), never from the
interaction log, and bucket edges are fixed in the card: no statistic of any interaction is used.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from benchmark.errors import BenchError


def field_of(name: str) -> str:
    """``genre=Drama`` -> ``genre``; ``onehot_feat3=7`` -> ``onehot_feat3``; ``age25-34`` -> ``age``;
    ``year>=1990`` -> ``year``."""
    head = name.split("=", 1)[0]
    if "=" in name and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", head):
        return head
    match = re.match(r"[A-Za-z_]+", name)
    return match.group(0) if match else name


def one_hot(values: Sequence[str], vocab: Sequence[str], what: str) -> np.ndarray:
    """A closed vocabulary from the card: an unexpected value is an error naming the row."""
    index = {v: k for k, v in enumerate(vocab)}
    out = np.zeros((len(values), len(vocab)), dtype=np.float32)
    for row, v in enumerate(values):
        if v not in index:
            raise BenchError(f"{what}: unexpected value {v!r} (row {row + 1}); expected one of {', '.join(vocab)}")
        out[row, index[v]] = 1.0
    return out


def _sorted_vocab(values: Iterable[str]) -> list[str]:
    """Numeric order when every value is a number (``2`` before ``10``), else lexical."""
    uniq = sorted(set(values))
    try:
        return sorted(uniq, key=float)
    except ValueError:
        return uniq


def categorical(values: Sequence[str], field: str, missing: str = "") -> tuple[np.ndarray, list[str]]:
    """An open vocabulary: every value in the content table gets a column; ``missing`` values get none."""
    vocab = _sorted_vocab(v for v in values if v != missing)
    return _fill(values, vocab, missing), [f"{field}={v}" for v in vocab]


def _fill(values: Sequence[str], vocab: list[str], missing: str) -> np.ndarray:
    index = {v: k for k, v in enumerate(vocab)}
    out = np.zeros((len(values), len(vocab)), dtype=np.float32)
    rows = [r for r, v in enumerate(values) if v != missing]
    out[rows, [index[values[r]] for r in rows]] = 1.0
    return out


def multi_hot(lists: Sequence[Sequence[str]], field: str) -> tuple[np.ndarray, list[str]]:
    """Several values per entity (genres, tags); vocabulary from the content table."""
    vocab = _sorted_vocab(v for vs in lists for v in vs)
    index = {v: k for k, v in enumerate(vocab)}
    out = np.zeros((len(lists), len(vocab)), dtype=np.float32)
    for row, vs in enumerate(lists):
        out[row, [index[v] for v in vs]] = 1.0
    return out, [f"{field}={v}" for v in vocab]


def closed_multi_hot(lists: Sequence[Sequence[str]], vocab: Sequence[str], field: str, what: str,
                     keys: Sequence[str]) -> np.ndarray:
    """Multi-hot over the card's vocabulary; an unknown value names the entity."""
    index = {v: k for k, v in enumerate(vocab)}
    out = np.zeros((len(lists), len(vocab)), dtype=np.float32)
    for row, vs in enumerate(lists):
        for v in vs:
            if v not in index:
                raise BenchError(f"{what}: {keys[row]!r} has {field} {v!r}; expected one of {', '.join(vocab)}")
            out[row, index[v]] = 1.0
    return out


def buckets(values: np.ndarray, bins: Sequence[int], prefix: str) -> tuple[np.ndarray, list[str]]:
    """Fixed integer edges (left-closed) as one-hot, plus a 'missing' column for NaN."""
    edges = [f"<{bins[0]}"] + [f"{a}-{b - 1}" for a, b in zip(bins[:-1], bins[1:])] + [f">={bins[-1]}"]
    names = [f"{prefix}{e}" for e in edges] + [f"{prefix}missing"]
    out = np.zeros((len(values), len(names)), dtype=np.float32)
    missing = np.isnan(values)
    idx = np.digitize(np.where(missing, 0, values), bins)
    out[np.arange(len(values)), np.where(missing, len(names) - 1, idx)] = 1.0
    return out, names


def hashed(values: Sequence[str], field: str, n_buckets: int, missing: str = "") -> tuple[np.ndarray, list[str]]:
    """Integer ids folded into ``n_buckets`` columns (id mod n): a fixed size whatever the vocabulary."""
    out = np.zeros((len(values), n_buckets), dtype=np.float32)
    rows = [r for r, v in enumerate(values) if v != missing]
    try:
        cols = [int(values[r]) % n_buckets for r in rows]
    except ValueError as exc:
        raise BenchError(f"{field}: expected integer ids to hash, got {exc}") from None
    out[rows, cols] = 1.0
    return out, [f"{field}={b}" for b in range(n_buckets)]


def normalise_code(value: str) -> str:
    """``1.0`` -> ``1``: some official files write integer codes as floats in part of the rows."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def encode_table(frame, spec: dict, what: str) -> tuple[np.ndarray, list[str]]:
    """Encode a content table's columns as the card's ``[features.*]`` section says.

    ``categorical``: open-vocabulary one-hot (empty = missing, no column); ``multi_hot``: column -> separator;
    ``buckets``: column -> {bins, scale} (value * scale, floored, in fixed bins); ``hashed``: column -> buckets.
    """
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for col in spec.get("categorical", []):
        _require(frame, col, what)
        values = [normalise_code(v) for v in _text(frame[col])]
        n_buckets = int(spec.get("hashed", {}).get(col, 0))
        mat, cols = hashed(values, col, n_buckets) if n_buckets else categorical(values, col)
        blocks.append(mat)
        names += cols
    for col, sep in spec.get("multi_hot", {}).items():
        _require(frame, col, what)
        lists = [[normalise_code(t) for t in v.split(sep) if t.strip()] for v in _text(frame[col])]
        mat, cols = multi_hot(lists, col)
        blocks.append(mat)
        names += cols
    for col, rule in spec.get("buckets", {}).items():
        _require(frame, col, what)
        raw = pd.Series(_text(frame[col]), index=frame.index).str.strip()
        values = np.floor(np.asarray(_to_float(raw, col, what)) * float(rule.get("scale", 1.0)))
        mat, cols = buckets(values, [int(b) for b in rule["bins"]], col)
        blocks.append(mat)
        names += cols
    n = len(frame)
    return (np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), dtype=np.float32)), names


def _text(column) -> list[str]:
    """A column as text with "" for a missing value (pandas 3 keeps NaN through ``astype(str)``)."""
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in column.tolist()]


def _require(frame, col: str, what: str) -> None:
    if col not in frame.columns:
        raise BenchError(f"{what}: no column {col!r} (the card's features name it); found {', '.join(map(str, frame.columns))}")


def _to_float(raw, col: str, what: str) -> np.ndarray:
    values = pd.to_numeric(raw.where(raw != "", None), errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & (raw != "").to_numpy())
    if len(bad):
        raise BenchError(f"{what}, line {int(bad[0]) + 2}, field {col!r}: expected a number or nothing, "
                         f"got {raw.iloc[int(bad[0])]!r}")
    return values.to_numpy(dtype=np.float64)
